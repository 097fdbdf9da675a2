/* skahello: a greeting printed through skalibs' buffer API, so that it needs libskarnet.so at
 * run time (the dynamic loader must find it in the image). With an argument it greets that. */
#include <skalibs/buffer.h>
#include <skalibs/types.h>

int main(int argc, char const *const *argv)
{
	char count[UINT_FMT];
	char const *who = argc > 1 ? argv[1] : "world";
	count[uint_fmt(count, (unsigned int)argc)] = 0;
	if (buffer_puts(buffer_1, "Hello, ") < 0
	    || buffer_puts(buffer_1, who) < 0
	    || buffer_puts(buffer_1, ", from skalibs! argc=") < 0
	    || buffer_puts(buffer_1, count) < 0
	    || buffer_putsflush(buffer_1, "\n") < 0)
		return 111;
	return 0;
}
