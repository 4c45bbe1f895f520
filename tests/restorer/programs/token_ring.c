/* Four threads pass a token round-robin under one mutex and one condition variable; the
 * holder prints its own __thread counter, so the output order is fixed by the token alone.
 * With "kernel" (SIGQUIT: kernel core) or "stop" (SIGSTOP: for gcore), the holder of turn
 * DUMP_AT prints the dump marker, waits until /proc shows the three others asleep in futex()
 * (the state the restorer must bring back), and dumps or stops. Each thread blocks its own
 * real-time signal (SIGRTMIN + its index), so every thread has a different signal mask. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 6
#define DUMP_AT 9

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_changed = PTHREAD_COND_INITIALIZER;
static int turn;
static int dump_signal;
static __thread int counter;

/* Threads other than the caller whose /proc/self/task/TID/syscall starts with futex's number
 * ("202 " on x86-64, "98 " on arm64). */
static int others_in_futex(void)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		char path[300], buf[16] = "", want[16];
		FILE *f;

		if (e->d_name[0] == '.' || atoi(e->d_name) == gettid())
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/syscall", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		snprintf(want, sizeof(want), "%d ", (int)SYS_futex);
		if (fgets(buf, sizeof(buf), f) && !strncmp(buf, want, strlen(want)))
			n++;
		fclose(f);
	}
	closedir(dir);
	return n;
}

static void *player(void *arg)
{
	int me = (int)(long)arg;
	sigset_t mine;

	sigemptyset(&mine);
	sigaddset(&mine, SIGRTMIN + me);
	pthread_sigmask(SIG_BLOCK, &mine, NULL);
	for (int round = 0; round < ROUNDS; round++) {
		pthread_mutex_lock(&lock);
		while (turn % THREADS != me)
			pthread_cond_wait(&turn_changed, &lock);
		counter += me + 1;
		printf("turn %d: thread %d round %d counter %d\n", turn, me, round, counter);
		if (turn == DUMP_AT) {
			printf("--- dump point ---\n");
			if (dump_signal) {
				while (others_in_futex() < THREADS - 1)
					sched_yield();
				raise(dump_signal);
			}
		}
		turn++;
		pthread_cond_broadcast(&turn_changed);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[THREADS];

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1)
		dump_signal = !strcmp(argv[1], "kernel") ? SIGQUIT : SIGSTOP;
	for (long i = 1; i < THREADS; i++)
		pthread_create(&t[i], NULL, player, (void *)i);
	player((void *)0);
	for (int i = 1; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("done after %d turns, main counter %d\n", turn, counter);
	return 0;
}
