/* kiln.c: the `kiln` command: tools over kiln's files for people and
** scripts, through the public API only (include/kiln/).
**
** Each subcommand is a row of COMMANDS: its name, a one-line summary, its
** usage text and its function. `kiln help CMD` and `kiln CMD --help` print
** the usage; `kiln --version` the version. Exit codes follow Unix habit:
** 0 done, 1 the work failed (the message on stderr names the file or
** folder and what is wrong), 2 the command line was wrong (usage on
** stderr). Output meant for scripts goes to stdout, one record a line. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* ---- kiln inspect, kiln graph ------------------------------------------------------ */

/* The shape of n as "(B, 784)". */
static const char *shape_str(const kiln_graph *g, kiln_node n, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "(");
    int rank = kiln_graph_node_rank(g, n);
    for (int i = 0; i < rank && k < cap; i++) {
        char d[64];
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "",
                              kiln_graph_dim_str(g, kiln_graph_node_dim(g, n, i), d, sizeof d));
    }
    if (k < cap)
        snprintf(buf + k, cap - k, rank == 1 ? ",)" : ")"); /* (B,) as kiln prints shapes */
    return buf;
}

/* Load path as a network file, or say why not (on stderr, naming cmd). */
static kiln_network *load_network(const char *cmd, const char *path)
{
    kiln_network *net = NULL;
    if (kiln_network_load(path, &net) != KILN_OK) {
        fprintf(stderr, "kiln %s: %s\n", cmd, net ? kiln_network_errmsg(net) : "out of memory");
        kiln_network_destroy(net);
        return NULL;
    }
    return net;
}

/* The arguments of a command on one network file: --help, the file, and an
** optional flag (NULL: none) setting *flag_on. Loads the file into *net.
** Returns -1 to go on, else the exit code (usage printed, or the load failed). */
static int network_args(const command *c, int argc, char **argv, const char *flag, bool *flag_on,
                        const char **path, kiln_network **net)
{
    *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(c->usage, stdout);
            return 0;
        } else if (flag && strcmp(argv[i], flag) == 0) {
            *flag_on = true;
        } else if (argv[i][0] == '-' || *path) {
            return usage_error(c, "unexpected argument '%s'", argv[i]);
        } else {
            *path = argv[i];
        }
    }
    if (!*path)
        return usage_error(c, "%s", "which file?");
    *net = load_network(c->name, *path);
    return *net ? -1 : 1;
}

static const char INSPECT_USAGE[] =
    "usage: kiln inspect NET.h5\n"
    "\n"
    "What a network file holds (kiln_network_save, docs/network-files.md): its\n"
    "roots, inputs and parameters with their shapes, one record a line:\n"
    "  root NAME OP DTYPE SHAPE      (SHAPE as (B, 784), symbols by name)\n"
    "  input NAME DTYPE SHAPE\n"
    "  param PATH SHAPE VALUES      (state PATH ... for a state)\n"
    "  nodes N\n";

static int cmd_inspect(int argc, char **argv)
{
    const char *path;
    kiln_network *net;
    int rc = network_args(find_command("inspect"), argc, argv, NULL, NULL, &path, &net);
    if (rc >= 0)
        return rc;
    const kiln_graph *g = kiln_network_graph(net);
    char shape[512];
    for (int i = 0; i < kiln_network_root_count(net); i++) {
        const char *name = kiln_network_root_name(net, i);
        kiln_node n = kiln_network_root(net, name);
        printf("root %s %s %s %s\n", name, kiln_graph_node_op(g, n), kiln_dtype_name(kiln_graph_node_dtype(g, n)),
               shape_str(g, n, shape, sizeof shape));
    }
    int count = kiln_graph_node_count(g);
    for (int id = 0; id < count; id++) {
        kiln_node n = {id};
        const char *op = kiln_graph_node_op(g, n);
        if (strcmp(op, "input") == 0)
            printf("input %s %s %s\n", kiln_graph_node_name(g, n), kiln_dtype_name(kiln_graph_node_dtype(g, n)),
                   shape_str(g, n, shape, sizeof shape));
        else if (strcmp(op, "param") == 0 || strcmp(op, "state") == 0) {
            const kiln_param *p = kiln_graph_node_param(g, n);
            const char *owner = kiln_graph_node_brick_path(g, n);
            printf("%s %s%s%s %s %lld\n", op, owner ? owner : "", owner && *owner ? "." : "",
                   p ? kiln_param_name(p) : kiln_graph_node_name(g, n), shape_str(g, n, shape, sizeof shape),
                   (long long)(p ? kiln_param_size(p) : 0));
        }
    }
    printf("nodes %d\n", count);
    kiln_network_destroy(net);
    return 0;
}

static const char GRAPH_USAGE[] =
    "usage: kiln graph NET.h5 [--after-passes]\n"
    "\n"
    "The graph of a network file as Graphviz dot on stdout (kiln graph net.h5 |\n"
    "dot -Tsvg > net.svg). --after-passes: the graph a program of its roots runs,\n"
    "after kiln's rewrites and fusion (this compiles it, every symbol at size 1).\n";

static int cmd_graph(int argc, char **argv)
{
    const char *path;
    kiln_network *net;
    bool after = false;
    int rc = network_args(find_command("graph"), argc, argv, "--after-passes", &after, &path, &net);
    if (rc >= 0)
        return rc;
    rc = 0;
    kiln_graph *g = kiln_network_graph(net);
    if (!after) {
        if (kiln_graph_write_dot(g, stdout) != KILN_OK) {
            fprintf(stderr, "kiln graph: %s\n", kiln_graph_errmsg(g));
            rc = 1;
        }
        kiln_network_destroy(net);
        return rc;
    }
    int n = kiln_network_root_count(net);
    kiln_node roots[64];
    if (n > (int)(sizeof roots / sizeof *roots)) {
        fprintf(stderr, "kiln graph: %s: %d roots, more than %d\n", path, n, (int)(sizeof roots / sizeof *roots));
        kiln_network_destroy(net);
        return 1;
    }
    for (int i = 0; i < n; i++)
        roots[i] = kiln_network_root(net, kiln_network_root_name(net, i));
    kiln_compile_options o = kiln_compile_options_default();
    o.outputs = roots;
    o.n_outputs = n;
    for (int k = 1; k < KILN_MAX_SYMBOLS; k++)
        o.max_size[k] = 1;
    kiln_program *p = NULL;
    if (kiln_compile(g, &o, &p) != KILN_OK || kiln_program_write_graph(p, stdout, true) != KILN_OK) {
        fprintf(stderr, "kiln graph: %s: %s\n", path, p ? kiln_program_errmsg(p) : "out of memory");
        rc = 1;
    }
    kiln_program_destroy(p);
    kiln_network_destroy(net);
    return rc;
}

/* ---- kiln export ------------------------------------------------------------------ */

static const char EXPORT_USAGE[] =
    "usage: kiln export NET.h5 -o DIR|LIBNAME.so [--name NAME] [--output ROOT]...\n"
    "                   [--weights embedded|file] [--blas] [--max-batch N]\n"
    "                   [--source-only]\n"
    "\n"
    "An inference-only shared object from a network file (docs/export.md):\n"
    "the forward pass of its roots with its parameters, needing libc and libm\n"
    "only (and OpenBLAS with --blas). Writes NAME.h (the ABI), NAME.c, and\n"
    "NAME.so (or the -o path ending in .so), all or none.\n"
    "  -o DIR          an existing folder: DIR/NAME.h, DIR/NAME.c, DIR/NAME.so\n"
    "  -o PATH.so      the library at PATH.so, NAME.h and NAME.c beside it\n"
    "  --name NAME     prefix of the generated symbols and files (a C name);\n"
    "                  default: libNAME.so's NAME, else NET.h5's stem\n"
    "  --output ROOT   export this root (repeat for more); default: every root\n"
    "                  of rank 1 or more (not scalars such as a cost)\n"
    "  --weights file  the weights in NAME.weights, read at load (default\n"
    "                  embedded: compiled into NAME.c and NAME.so)\n"
    "  --blas          products through CBLAS (the .so links OpenBLAS)\n"
    "  --max-batch N   the largest batch NAME_forward takes (default 1024)\n"
    "  --source-only   write NAME.h and NAME.c (and NAME.weights), no NAME.so\n"
    "Prints the files written, one a line.\n";

/* Is s a C name export accepts (letters, digits, '_', not starting with a digit)? */
static bool is_c_name(const char *s, size_t n)
{
    if (n == 0 || n > 48 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_'))
            return false;
    return true;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

static int cmd_export(int argc, char **argv)
{
    const command *c = find_command("export");
    const char *path = NULL, *out = NULL, *name = NULL, *roots[64];
    int n_roots = 0;
    kiln_export_options eo = kiln_export_options_default();
    eo.compile = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool takes = strcmp(a, "-o") == 0 || strcmp(a, "--name") == 0 || strcmp(a, "--output") == 0 ||
                     strcmp(a, "--weights") == 0 || strcmp(a, "--max-batch") == 0;
        if (is_help(a)) {
            fputs(c->usage, stdout);
            return 0;
        } else if (takes && i + 1 == argc) {
            return usage_error(c, "%s needs a value", a);
        } else if (strcmp(a, "-o") == 0) {
            out = argv[++i];
        } else if (strcmp(a, "--name") == 0) {
            name = argv[++i];
        } else if (strcmp(a, "--output") == 0) {
            if (n_roots == (int)(sizeof roots / sizeof *roots))
                return usage_error(c, "%s", "more than 64 --output roots");
            roots[n_roots++] = argv[++i];
        } else if (strcmp(a, "--weights") == 0) {
            const char *v = argv[++i];
            if (strcmp(v, "embedded") != 0 && strcmp(v, "file") != 0)
                return usage_error(c, "--weights '%s': embedded or file", v);
            eo.weights_file = strcmp(v, "file") == 0;
        } else if (strcmp(a, "--max-batch") == 0) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > (1 << 24))
                return usage_error(c, "--max-batch '%s': a whole number from 1 to 16777216", argv[i]);
            eo.max_batch = v;
        } else if (strcmp(a, "--blas") == 0) {
            eo.blas = true;
        } else if (strcmp(a, "--source-only") == 0) {
            eo.compile = false;
        } else if (a[0] == '-' || path) {
            return usage_error(c, "unexpected argument '%s'", a);
        } else {
            path = a;
        }
    }
    if (!path)
        return usage_error(c, "%s", "which network file?");
    if (!out)
        return usage_error(c, "%s", "where to? (-o DIR or -o LIBNAME.so)");
    /* -o: an existing folder, or the library's path */
    struct stat sb;
    char dir[4096], stem[64];
    bool is_dir = stat(out, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (!is_dir && !ends_with(out, ".so")) {
        fprintf(stderr, "kiln export: %s: not a folder (give an existing folder, or a path ending in .so)\n", out);
        return 1;
    }
    if (!is_dir && !eo.compile)
        return usage_error(c, "%s", "--source-only writes no library: -o names a folder");
    const char *base = out;
    if (is_dir) {
        snprintf(dir, sizeof dir, "%s", out);
        base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    } else {
        const char *slash = strrchr(out, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == out ? 1 : slash - out) : 1, slash ? out : ".");
        base = slash ? slash + 1 : out;
        if (strncmp(base, "lib", 3) == 0)
            base += 3;
        eo.library = out;
    }
    if (!name) { /* the stem of libNAME.so, or of NET.h5 */
        size_t n = strcspn(base, ".");
        if (!is_c_name(base, n))
            return usage_error(c, "cannot take a C name from '%s': give --name NAME", base);
        snprintf(stem, sizeof stem, "%.*s", (int)n, base);
        name = stem;
    }
    eo.name = name;
    eo.dir = dir;
    kiln_network *net = load_network(c->name, path);
    if (!net)
        return 1;
    int rc = 0;
    if (kiln_network_export(net, roots, n_roots, &eo) != KILN_OK) {
        fprintf(stderr, "kiln export: %s: %s\n", path, kiln_network_errmsg(net));
        rc = 1;
    } else {
        const char *dsep = strcmp(dir, "/") == 0 ? "" : "/";
        printf("%s%s%s.h\n%s%s%s.c\n", dir, dsep, name, dir, dsep, name);
        if (eo.weights_file)
            printf("%s%s%s.weights\n", dir, dsep, name);
        if (eo.compile && eo.library)
            printf("%s\n", eo.library);
        else if (eo.compile)
            printf("%s%s%s.so\n", dir, dsep, name);
    }
    kiln_network_destroy(net);
    return rc;
}

/* ---- kiln build ------------------------------------------------------------------- */

/* Remove the files under dir (one level of folders below it: what
** kiln_program_write_aot writes), then dir. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (unlink(sub) != 0)
            remove_tree(sub);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static const char BUILD_USAGE[] =
    "usage: kiln build NET.h5 -o PROGRAM [--infer] [--output NAME]... [--batch N]\n"
    "                  [--keep-sources DIR] [--cc CC]\n"
    "       kiln build NET.h5 -o PROGRAM --train [--cost NAME] [--step-rule RULE]\n"
    "                  [--learning-rate X] [--batch N] [--keep-sources DIR] [--cc CC]\n"
    "\n"
    "A standalone program of a network file that needs no libkiln (docs/aot.md):\n"
    "its C sources, built by the C compiler kiln's JIT uses.\n"
    "  --infer          (the default) PROGRAM reads raw float32 examples of the\n"
    "                   network's input from stdin or --input FILE, writes the\n"
    "                   outputs as raw float32 to stdout or --output FILE\n"
    "  --output NAME    a root of the file to compute (repeatable; default every\n"
    "                   root but the cost)\n"
    "  --train          PROGRAM trains on IDX files (--images, --labels) and\n"
    "                   writes a network file of the trained parameters (-o)\n"
    "  --cost NAME      the root to minimise (default \"cost\")\n"
    "  --step-rule RULE sgd (kiln's scale), momentum, adam, rmsprop, adagrad,\n"
    "                   adadelta (default sgd), with its default learning rate or\n"
    "  --learning-rate X\n"
    "  --batch N        inference: the largest batch of one forward pass (default\n"
    "                   1024); training: the batch size (default 32)\n"
    "  --keep-sources DIR  write the sources into DIR (made if missing) and keep\n"
    "                   them, with a README.md giving the command that builds them\n"
    "  --cc CC          the C compiler (default: $KILN_CC, clang, gcc)\n"
    "PROGRAM appears whole or not at all.\n";

#define BUILD_MAX_ROOTS 64

static int cmd_build(int argc, char **argv)
{
    const command *c = find_command("build");
    const char *path = NULL, *program = NULL, *keep = NULL, *cc = NULL, *cost_name = "cost", *rule_name = "sgd";
    const char *outs[BUILD_MAX_ROOTS];
    int n_outs = 0;
    long long batch = 0;
    double lr = 0;
    bool train = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (is_help(a)) {
            fputs(c->usage, stdout);
            return 0;
        } else if (strcmp(a, "--infer") == 0 || strcmp(a, "--train") == 0) {
            train = a[2] == 't';
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--keep-sources") == 0 || strcmp(a, "--cc") == 0 ||
                   strcmp(a, "--cost") == 0 || strcmp(a, "--step-rule") == 0) {
            if (!has)
                return usage_error(c, "%s needs a value", a);
            *(a[1] == 'o' ? &program : a[2] == 'k' ? &keep : a[3] == 'c' ? &cc : a[3] == 'o' ? &cost_name
                                                                                             : &rule_name) = argv[++i];
        } else if (strcmp(a, "--learning-rate") == 0) {
            char *end;
            if (!has || !((lr = strtod(argv[i + 1], &end)) > 0) || *end)
                return usage_error(c, "--learning-rate needs a number > 0, not '%s'", has ? argv[i + 1] : "");
            i++;
        } else if (strcmp(a, "--output") == 0) {
            if (!has || n_outs == BUILD_MAX_ROOTS)
                return usage_error(c, "%s needs a root name (at most 64)", a);
            outs[n_outs++] = argv[++i];
        } else if (strcmp(a, "--batch") == 0) {
            char *end;
            if (!has || (batch = strtoll(argv[i + 1], &end, 10)) < 1 || *end)
                return usage_error(c, "--batch needs a whole number >= 1, not '%s'", has ? argv[i + 1] : "");
            i++;
        } else if (a[0] == '-' || path) {
            return usage_error(c, "unexpected argument '%s'", a);
        } else {
            path = a;
        }
    }
    if (!path)
        return usage_error(c, "%s", "which network file?");
    if (!program)
        return usage_error(c, "%s", "-o PROGRAM: where to write the program?");
    kiln_step_rule rule;
    if (!kiln_step_rule_by_name(strcmp(rule_name, "sgd") == 0 ? "scale" : rule_name, lr, &rule))
        return usage_error(c, "--step-rule %s: not a rule, or one without a learning rate", rule_name);
    kiln_network *net = load_network("build", path);
    if (!net)
        return 1;
    kiln_node roots[BUILD_MAX_ROOTS], cost = kiln_network_root(net, cost_name);
    const char *names[BUILD_MAX_ROOTS];
    int n = 0;
    if (train) {
        if (cost.id < 0) {
            fprintf(stderr, "kiln build: %s: no root named '%s' to train (--cost NAME)\n", path, cost_name);
            kiln_network_destroy(net);
            return 1;
        }
        for (int k = 0; k < kiln_network_root_count(net) && n < BUILD_MAX_ROOTS; k++) {
            names[n] = kiln_network_root_name(net, k);
            roots[n] = kiln_network_root(net, names[n]);
            n++;
        }
    } else if (n_outs) {
        for (int k = 0; k < n_outs; k++) {
            roots[n] = kiln_network_root(net, outs[k]);
            if (roots[n].id < 0) {
                fprintf(stderr, "kiln build: %s: no root named '%s' (kiln inspect lists them)\n", path, outs[k]);
                kiln_network_destroy(net);
                return 1;
            }
            n++;
        }
    } else {
        for (int k = 0; k < kiln_network_root_count(net) && n < BUILD_MAX_ROOTS; k++)
            if (strcmp(kiln_network_root_name(net, k), cost_name) != 0)
                roots[n++] = kiln_network_root(net, kiln_network_root_name(net, k));
        if (n == 0) {
            fprintf(stderr, "kiln build: %s: no root to compute but the cost (--output NAME)\n", path);
            kiln_network_destroy(net);
            return 1;
        }
    }
    kiln_compile_options o = kiln_compile_options_default();
    o.cc = cc;
    o.max_size[0] = batch;
    if (train) { /* the program trains as kiln_program_train_step of this program does */
        o.cost = cost;
        o.step_rule = rule;
    } else {
        o.outputs = roots;
        o.n_outputs = n;
        o.no_fast_paths = true; /* the program's products are CBLAS's: the same bits as this JIT program */
    }
    char tmpdir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/kiln-build-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    const char *dir = keep;
    if (!dir && !(dir = mkdtemp(tmpdir))) {
        perror("kiln build: a temporary folder");
        kiln_network_destroy(net);
        return 1;
    }
    kiln_program *p = NULL;
    kiln_aot_options ao = kiln_aot_options_default();
    ao.kind = train ? KILN_AOT_TRAIN : KILN_AOT_INFER;
    ao.graph = kiln_network_graph(net);
    ao.roots = roots;
    ao.root_names = names;
    ao.n_roots = n;
    ao.dir = dir;
    ao.program = program;
    ao.cc = cc;
    ao.batch = batch;
    int rc = 0;
    if (kiln_compile(kiln_network_graph(net), &o, &p) != KILN_OK || kiln_program_write_aot(p, &ao) != KILN_OK) {
        fprintf(stderr, "kiln build: %s: %s\n", path, p ? kiln_program_errmsg(p) : "out of memory");
        rc = 1;
    }
    kiln_program_destroy(p);
    kiln_network_destroy(net);
    if (!keep)
        remove_tree(dir);
    return rc;
}

/* ---- the table ----------------------------------------------------------------- */

static const command COMMANDS[] = {
    {"build", "a standalone program of a network file", BUILD_USAGE, cmd_build},
    {"cache", "list, clear or prune the compile cache", CACHE_USAGE, cmd_cache},
    {"export", "an inference-only shared object from a network file", EXPORT_USAGE, cmd_export},
    {"graph", "a network file's graph as Graphviz dot", GRAPH_USAGE, cmd_graph},
    {"inspect", "what a network file holds", INSPECT_USAGE, cmd_inspect},
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
