/* hello: the C program of the chrootforge test world.
 *
 *   hello            print the greeting once and exit
 *   hello --serve [SECONDS]
 *                    print the greeting, then again every SECONDS (default 60)
 *                    until SIGTERM or SIGINT: a long-running s6 service
 *   hello --version  print the version and the build kind
 *
 * The greeting names the build kind ("static" when built with -DHELLO_STATIC, as
 * USE=static does, else "dynamic") and the uid/gid it runs as, so tests can tell
 * the builds and the service user apart. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef HELLO_VERSION
#define HELLO_VERSION "1.0"
#endif

#ifdef HELLO_STATIC
#define BUILD_KIND "static"
#else
#define BUILD_KIND "dynamic"
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void greet(void)
{
	printf("Hello from chrootforge! build=%s uid=%u gid=%u\n", BUILD_KIND,
	       (unsigned)getuid(), (unsigned)getgid());
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("hello %s (%s)\n", HELLO_VERSION, BUILD_KIND);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--serve") == 0) {
		unsigned interval = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 60;
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		greet();
		while (!stop) {
			unsigned left = interval ? interval : 60;
			while (!stop && left)
				left = sleep(left);
			if (!stop)
				greet();
		}
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "usage: hello [--serve [SECONDS] | --version]\n");
		return 2;
	}
	greet();
	return 0;
}
