/* kiln.c: the `kiln` command: tools over kiln's files for people and
** scripts, through the public API only (include/kiln/).
**
** Each subcommand is a row of COMMANDS: its name, a one-line summary, its
** usage text and its function. `kiln help CMD` and `kiln CMD --help` print
** the usage; `kiln --version` the version. Exit codes follow Unix habit:
** 0 done, 1 the work failed (the message on stderr names the file or
** folder and what is wrong), 2 the command line was wrong (usage on
** stderr). Output meant for scripts goes to stdout, one record a line. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln/kiln.h"

#define EXIT_USAGE 2

typedef struct command {
    const char *name;
    const char *summary;
    const char *usage;
    int (*run)(int argc, char **argv);
} command;

static const command *find_command(const char *name);

static int usage_error(const command *c, const char *fmt, const char *arg)
{
    fprintf(stderr, "kiln %s: ", c->name);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", c->usage);
    return EXIT_USAGE;
}

static bool is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

/* ---- kiln cache -------------------------------------------------------------- */

static const char CACHE_USAGE[] =
    "usage: kiln cache list [--dir DIR]\n"
    "       kiln cache clear [--dir DIR]\n"
    "       kiln cache prune [--dir DIR]\n"
    "\n"
    "The compile cache ($XDG_CACHE_HOME/kiln, else ~/.cache/kiln; --dir DIR\n"
    "names another).\n"
    "  list   one line per entry: key, bytes, date written (UTC), 'ok' or\n"
    "         'unverified' (the library does not match its checksum record, or\n"
    "         has none: the next compile rebuilds it; the reason follows), and\n"
    "         'source' when the generated C is beside it; a total on stderr\n"
    "  clear  remove every entry; entries being compiled now stay\n"
    "  prune  remove only what processes killed mid-compile left behind\n";

static int print_entry(const kiln_cache_entry *e, void *user)
{
    (void)user;
    char when[32] = "?";
    time_t t = (time_t)e->modified;
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s %lld %s %s%s%s%s\n", e->key, (long long)e->bytes, when, e->verified ? "ok" : "unverified",
           e->has_source ? " source" : "", e->verified ? "" : ": ", e->problem);
    return 0;
}

static int cmd_cache(int argc, char **argv)
{
    const command *c = find_command("cache");
    const char *dir = NULL, *action = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(c->usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--dir") == 0) {
            if (++i == argc)
                return usage_error(c, "%s needs a folder", "--dir");
            dir = argv[i];
        } else if (argv[i][0] == '-' || action) {
            return usage_error(c, "unexpected argument '%s'", argv[i]);
        } else {
            action = argv[i];
        }
    }
    if (!action)
        return usage_error(c, "%s", "which action: list, clear or prune?");
    kiln_cache_report r;
    enum kiln_status st;
    if (strcmp(action, "list") == 0) {
        st = kiln_cache_list(dir, print_entry, NULL, &r);
        if (!st)
            fprintf(stderr, "%d entr%s, %lld bytes\n", r.n_entries, r.n_entries == 1 ? "y" : "ies",
                    (long long)r.entry_bytes);
    } else if (strcmp(action, "clear") == 0) {
        st = kiln_cache_clear(dir, &r);
        if (!st)
            fprintf(stderr, "removed %d entr%s (%d files, %lld bytes)%s\n", r.n_entries,
                    r.n_entries == 1 ? "y" : "ies", r.n_removed, (long long)r.bytes_removed,
                    r.n_busy ? "; some are being compiled and stay" : "");
    } else if (strcmp(action, "prune") == 0) {
        st = kiln_cache_prune(dir, &r);
        if (!st)
            fprintf(stderr, "removed %d files (%lld bytes) left by killed processes\n", r.n_removed,
                    (long long)r.bytes_removed);
    } else {
        return usage_error(c, "unknown action '%s' (list, clear or prune)", action);
    }
    if (st) {
        fprintf(stderr, "kiln cache %s: %s\n", action, r.msg);
        return 1;
    }
    return 0;
}

/* ---- the table ----------------------------------------------------------------- */

static const command COMMANDS[] = {
    {"cache", "list, clear or prune the compile cache", CACHE_USAGE, cmd_cache},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0)
            return &COMMANDS[i];
    return NULL;
}

static void print_usage(FILE *f)
{
    fputs("usage: kiln COMMAND [ARGS...]\n"
          "       kiln help COMMAND | kiln COMMAND --help\n"
          "       kiln --version\n\ncommands:\n",
          f);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fputs("\nSee kiln(1).\n", f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    if (is_help(argv[1])) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kiln %s\n", KILN_VERSION_STRING);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            print_usage(stdout);
            return 0;
        }
        const command *c = find_command(argv[2]);
        if (!c) {
            fprintf(stderr, "kiln help: no command '%s'\n", argv[2]);
            return EXIT_USAGE;
        }
        fputs(c->usage, stdout);
        return 0;
    }
    const command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "kiln: no command '%s'\n", argv[1]);
        print_usage(stderr);
        return EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
