/* main: the drover command line. Always runs in the foreground (systemd
 * style); -t checks the configuration and exits. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "supervisor/supervisor.h"
#include "proto/protocols.h"
#include "worker/proto.h"
#include "worker/tls.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

enum { MAIN_OPT_TRIAL = 1000 };

static void main_usage(FILE *out)
{
	fprintf(out,
		"Usage: drover [-c FILE] [-t] [--version] [--help]\n"
		"\n"
		"A prefork HTTP/1.1 and echo server with socket activation, graceful\n"
		"drain, zero-downtime reload (SIGHUP) and binary upgrade (SIGUSR2).\n"
		"\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"  -t, --test         check the configuration and exit (0 = OK, 1 = errors)\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         print this help and exit\n"
		"\n"
		"Signals: TERM/INT graceful stop, QUIT fast stop, HUP reload,\n"
		"USR1 reopen logs, USR2 binary upgrade. See drover(8), drover.ini(5).\n",
		CONFIG_DEFAULT_PATH);
}

/* drover -t: what a start checks too: the config, the paths workers read
 * (they must be there for them), the certificates and keys (read as the
 * supervisor reads them), and the files workers write (the
 * supervisor opens them, as root if it runs as root); every problem is
 * reported. r and err: config_load()'s. The exit status. */
static int main_check(const char *path, struct config *cfg, int r, char *err, size_t err_len)
{
	if (r >= 0) {
		r = proto_paths_check(cfg, err, err_len);
		int rt = tls_load(cfg, err, err_len);
		if (r >= 0)
			r = rt;
		size_t used = strlen(err);
		struct proto_fileset files;
		int rf = proto_files_open(cfg, &files, true, err + used + (used ? 1 : 0), err_len - used - 1);
		if (rf < 0 && used)
			err[used] = '\n';
		if (r >= 0)
			r = rf;
	}
	config_free(cfg);
	if (r < 0) {
		fprintf(stderr, "%s%s", err, err[0] && err[strlen(err) - 1] != '\n' ? "\n" : "");
		fprintf(stderr, "drover: %s: configuration has errors\n", path);
		return 1;
	}
	printf("drover: %s: configuration OK\n", path);
	return 0;
}

int main(int argc, char *argv[])
{
	proto_register(protocols);
	tls_register();
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		/* Internal: a binary upgrade's trial run (see supervisor.h). */
		{ "upgrade-trial", required_argument, NULL, MAIN_OPT_TRIAL },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CONFIG_DEFAULT_PATH;
	bool test = false;
	int trial_fd = -1;
	int c;
	while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = true;
			break;
		case MAIN_OPT_TRIAL:
			trial_fd = (int)strtol(optarg, NULL, 10);
			if (trial_fd < 3) {
				fprintf(stderr, "drover: --upgrade-trial needs a file descriptor\n");
				return 2;
			}
			break;
		case 'V':
			printf("drover %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "drover: unexpected argument '%s'\n", argv[optind]);
		main_usage(stderr);
		return 2;
	}

	log_init("supervisor");
	char err[8192] = "";
	struct config *cfg = NULL;
	int r = config_load(path, &cfg, err, sizeof(err));
	if (test)
		return main_check(path, cfg, r, err, sizeof(err));
	if (r < 0) {
		char *save = NULL;
		for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			log_error("%s", line);
		log_error("not starting: %s has errors", path);
		return 1;
	}
	log_set_level(cfg->server.log_level);
	return supervisor_run(cfg, argv[0], argv, trial_fd);
}
