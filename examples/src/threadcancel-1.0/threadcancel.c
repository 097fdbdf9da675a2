/* threadcancel: cancel a thread that waits in pause(), then join it.
 *
 * glibc (2.34 and later) unwinds a cancelled thread with libgcc_s.so.1, which it dlopen()s at
 * that moment: no DT_NEEDED entry names it. Without it, glibc prints
 * "libgcc_s.so.1 must be installed for pthread_cancel to work" and aborts.
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *waiter(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	pthread_t thread;
	void *result = NULL;

	if (pthread_create(&thread, NULL, waiter, NULL) != 0) {
		fputs("threadcancel: pthread_create failed\n", stderr);
		return 1;
	}
	if (pthread_cancel(thread) != 0 || pthread_join(thread, &result) != 0) {
		fputs("threadcancel: pthread_cancel or pthread_join failed\n", stderr);
		return 1;
	}
	if (result != PTHREAD_CANCELED) {
		fputs("threadcancel: the thread was not cancelled\n", stderr);
		return 1;
	}
	puts("threadcancel: thread cancelled");
	return 0;
}
