/* config.c: the configuration (Blocks' blocks.config): defaults, a YAML
** file, environment variables.
**
** Data: a fixed table of the settings kiln knows (CONFIG_KEYS) and, per
** config object, one slot per setting: its value (an integer, a boolean or an
** owned string, by the setting's type) and where it came from. Loading fills
** the slots layer by layer (defaults, file, environment), each value parsed
** and checked when it is read, so that every error names its place (file,
** line and column, or the variable) and a loaded config holds only valid
** values; the getters then only look up and check the type asked for.
**
** The file is read with libyaml's event parser rather than its document
** loader: the settings are one flat mapping of scalars, and events stop at
** the first thing that is not (a nested value, an alias, a second document)
** with the mark of where it starts, without building a tree of whatever the
** file holds. Unknown keys are errors, as in Blocks (a misspelt setting would
** otherwise be silently ignored).
**
** No global state: nothing is cached between loads. The environment is read
** through an envp array, so kiln_config_load_from is hermetic, and
** kiln_config_load passes the process's environ. */
#include "runtime/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

extern char **environ;

enum config_type { CONFIG_INT, CONFIG_BOOL, CONFIG_STRING, CONFIG_PATH };

typedef struct config_key {
    const char *name;
    enum config_type type;
    /* Default as the text a file would give; NULL: no default. temp_dir's
    ** is computed (TMPDIR). */
    const char *def;
    /* CONFIG_STRING: the values allowed, '|'-separated; NULL: any. */
    const char *choices;
} config_key;

static const config_key CONFIG_KEYS[] = {
    {"default_seed", CONFIG_INT, "1", NULL},
    {"fast_paths", CONFIG_BOOL, "true", NULL},
    {"log_backend", CONFIG_STRING, "memory", "memory|sqlite"},
    {"profile", CONFIG_BOOL, "false", NULL},
    {"sqlite_database", CONFIG_PATH, NULL, NULL},
    {"temp_dir", CONFIG_PATH, NULL, NULL}, /* default: $TMPDIR, else /tmp */
};
#define N_CONFIG_KEYS ((int)(sizeof CONFIG_KEYS / sizeof CONFIG_KEYS[0]))
#define CONFIG_KEY_LIST "default_seed, fast_paths, log_backend, profile, sqlite_database, temp_dir"
#define CONFIG_ENV_PREFIX "KILN_"
#define CONFIG_DEFAULT_TEMP_DIR "/tmp"

typedef struct config_slot {
    bool set;
    int64_t i;  /* CONFIG_INT */
    bool b;     /* CONFIG_BOOL */
    char *s;    /* CONFIG_STRING, CONFIG_PATH: owned */
    char *source; /* owned: "default", "<file>:<line>", "environment KILN_X" */
} config_slot;

struct kiln_config {
    config_slot slots[N_CONFIG_KEYS];
    bool loaded; /* every layer read without error */
    kiln_err err;
};

static int config_key_index(const char *name)
{
    for (int i = 0; i < N_CONFIG_KEYS; i++)
        if (name && strcmp(CONFIG_KEYS[i].name, name) == 0)
            return i;
    return -1;
}

/* The value of variable name in envp, or NULL. */
static const char *env_get(const char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

/* ---- Values ---------------------------------------------------------------- */

static bool word_in(const char *w, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcasecmp(w, list[i]) == 0)
            return true;
    return false;
}

/* Parse text as setting k into slot (its value only). On failure write why
** into why ("expected an integer, got 'x'") and return -1. */
static int parse_value(const config_key *k, const char *text, const char *const *envp,
                       config_slot *slot, char *why, size_t cap)
{
    static const char *const TRUE_WORDS[] = {"true", "yes", "on", "y", "1", NULL};
    static const char *const FALSE_WORDS[] = {"false", "no", "off", "n", "0", NULL};
    switch (k->type) {
    case CONFIG_INT: {
        const char *p = text[0] == '+' ? text + 1 : text;
        bool digits = p[0] != '\0';
        for (const char *q = p; *q; q++)
            digits = digits && isdigit((unsigned char)*q);
        if (!digits) {
            kiln_snprintf(why, cap, "expected an integer >= 0, got '%.64s'", text);
            return -1;
        }
        errno = 0;
        long long v = strtoll(p, NULL, 10);
        if (errno == ERANGE) {
            kiln_snprintf(why, cap, "%.64s is out of range (0 to %lld)", text, LLONG_MAX);
            return -1;
        }
        slot->i = v;
        return 0;
    }
    case CONFIG_BOOL:
        if (word_in(text, TRUE_WORDS) || word_in(text, FALSE_WORDS)) {
            slot->b = word_in(text, TRUE_WORDS);
            return 0;
        }
        kiln_snprintf(why, cap, "expected a boolean (true or false), got '%.64s'", text);
        return -1;
    case CONFIG_STRING:
    case CONFIG_PATH: {
        if (!text[0]) {
            kiln_snprintf(why, cap, "expected a %s, got an empty value",
                          k->type == CONFIG_PATH ? "path" : "string");
            return -1;
        }
        if (k->choices) {
            size_t n = strlen(text);
            bool ok = false;
            for (const char *c = k->choices; *c && !ok; c += strcspn(c, "|") + (c[strcspn(c, "|")] != 0))
                ok = strcspn(c, "|") == n && strncmp(c, text, n) == 0;
            if (!ok) {
                kiln_snprintf(why, cap, "expected one of %s, got '%.64s'", k->choices, text);
                return -1;
            }
        }
        char *s;
        if (k->type == CONFIG_PATH && strncmp(text, "~/", 2) == 0) {
            const char *home = env_get(envp, "HOME");
            if (!home || !home[0]) {
                kiln_snprintf(why, cap, "'%.64s' starts with ~/ but HOME is not set", text);
                return -1;
            }
            size_t n = strlen(home) + strlen(text);
            s = malloc(n);
            if (s)
                snprintf(s, n, "%s%s", home, text + 1);
        } else {
            s = kiln_strdup(text);
        }
        if (!s) {
            kiln_snprintf(why, cap, "out of memory");
            return -1;
        }
        free(slot->s);
        slot->s = s;
        return 0;
    }
    }
    return -1;
}

/* Set slot i from text, recording source (copied). */
static enum kiln_status set_slot(kiln_config *c, int i, const char *text, const char *const *envp,
                                 const char *source, const char *where)
{
    char why[256];
    config_slot *slot = &c->slots[i];
    if (parse_value(&CONFIG_KEYS[i], text, envp, slot, why, sizeof why) != 0)
        return kiln_err_set(&c->err, strcmp(why, "out of memory") ? KILN_ERR_FORMAT : KILN_ERR_NOMEM,
                            "%s: %s: %s", where, CONFIG_KEYS[i].name, why);
    char *src = kiln_strdup(source);
    if (!src)
        return kiln_err_set(&c->err, KILN_ERR_NOMEM, "%s: out of memory", where);
    free(slot->source);
    slot->source = src;
    slot->set = true;
    return KILN_OK;
}

/* ---- The YAML file --------------------------------------------------------- */

static const char *event_what(yaml_event_type_t t)
{
    switch (t) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a sequence";
    case YAML_ALIAS_EVENT: return "an alias";
    case YAML_SCALAR_EVENT: return "a single value";
    case YAML_DOCUMENT_START_EVENT: return "a second document";
    default: return "something else";
    }
}

/* Next event into ev (the previous one deleted by the caller). */
static enum kiln_status next_event(kiln_config *c, yaml_parser_t *p, yaml_event_t *ev,
                                   const char *path)
{
    if (yaml_parser_parse(p, ev))
        return KILN_OK;
    if (p->error == YAML_MEMORY_ERROR)
        return kiln_err_set(&c->err, KILN_ERR_NOMEM, "%s: out of memory reading it", path);
    if (p->error == YAML_READER_ERROR)
        return kiln_err_set(&c->err, KILN_ERR_FORMAT, "%s: byte %zu: %s", path,
                            p->problem_offset, p->problem ? p->problem : "cannot read");
    const yaml_mark_t *mk = &p->problem_mark, *cm = &p->context_mark;
    if (p->context) /* "while scanning a quoted scalar": say where that began */
        return kiln_err_set(&c->err, KILN_ERR_FORMAT,
                            "%s:%zu:%zu: malformed YAML: %s %s (begun at line %zu, column %zu)",
                            kiln_path_show(path).s, mk->line + 1, mk->column + 1,
                            p->problem ? p->problem : "error", p->context, cm->line + 1,
                            cm->column + 1);
    return kiln_err_set(&c->err, KILN_ERR_FORMAT, "%s:%zu:%zu: malformed YAML: %s",
                        kiln_path_show(path).s, mk->line + 1, mk->column + 1,
                        p->problem ? p->problem : "error");
}

/* Plan: 1. stream and document start (an empty stream or document is an
** empty configuration); 2. a mapping of scalar keys to scalar values, each
** key known and given once, each value parsed into its slot; 3. the end,
** with no second document. Every error names path:line:column. */
/* path: the file as messages show it (kiln_path_show); full: the file, for
** kiln_config_source. */
static enum kiln_status read_mapping(kiln_config *c, yaml_parser_t *p, const char *path,
                                     const char *full, const char *const *envp)
{
    yaml_event_t ev;
    enum kiln_status st;
    int first_line[N_CONFIG_KEYS] = {0};
    int phase = 0; /* 0 stream start, 1 document start, 2 top node, 3 keys, 4 document end, 5 stream end */
    char *key = NULL;
    size_t key_line = 0, key_col = 0;

    while ((st = next_event(c, p, &ev, path)) == KILN_OK) {
        size_t line = ev.start_mark.line + 1, col = ev.start_mark.column + 1;
        yaml_event_type_t t = ev.type;
        bool done = false;
        switch (phase) {
        case 0: /* 1. */
            phase = 1;
            break;
        case 1:
            if (t == YAML_STREAM_END_EVENT)
                done = true; /* an empty file */
            else
                phase = 2;
            break;
        case 2:
            if (t == YAML_MAPPING_START_EVENT)
                phase = 3;
            else if (t == YAML_SCALAR_EVENT && ev.data.scalar.length == 0 &&
                     ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                phase = 4; /* "---" and nothing else */
            else
                st = kiln_err_set(&c->err, KILN_ERR_FORMAT,
                                  "%s:%zu:%zu: expected a mapping of settings (key: value), got %s",
                                  path, line, col, event_what(t));
            break;
        case 3: /* 2. */
            if (t == YAML_MAPPING_END_EVENT && !key) {
                phase = 4;
                break;
            }
            if (t != YAML_SCALAR_EVENT) {
                st = key ? kiln_err_set(&c->err, KILN_ERR_FORMAT,
                                        "%s:%zu:%zu: %s: expected a single value, got %s", path,
                                        line, col, key, event_what(t))
                         : kiln_err_set(&c->err, KILN_ERR_FORMAT,
                                        "%s:%zu:%zu: expected a setting name, got %s", path, line,
                                        col, event_what(t));
                break;
            }
            if (!key) {
                key = kiln_strdup((const char *)ev.data.scalar.value);
                key_line = line;
                key_col = col;
                if (!key)
                    st = kiln_err_set(&c->err, KILN_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            int i = config_key_index(key);
            char where[64], source[64];
            if (i < 0) {
                st = kiln_err_set(&c->err, KILN_ERR_FORMAT,
                                  "%s:%zu:%zu: unknown setting '%.64s' (kiln knows: " CONFIG_KEY_LIST ")",
                                  path, key_line, key_col, key);
            } else if (first_line[i]) {
                st = kiln_err_set(&c->err, KILN_ERR_FORMAT,
                                  "%s:%zu:%zu: %s is set twice (first on line %d)", path, key_line,
                                  key_col, key, first_line[i]);
            } else {
                first_line[i] = (int)key_line;
                snprintf(where, sizeof where, ":%zu:%zu", line, col);
                snprintf(source, sizeof source, ":%zu", key_line);
                /* where and source are the path plus a mark: built here so
                ** that a long path is never cut. */
                size_t n = strlen(full) + sizeof where;
                char *w = malloc(n), *s = malloc(n);
                if (!w || !s) {
                    st = kiln_err_set(&c->err, KILN_ERR_NOMEM, "%s: out of memory", path);
                } else {
                    snprintf(w, n, "%s%s", path, where);
                    snprintf(s, n, "%s%s", full, source);
                    st = set_slot(c, i, (const char *)ev.data.scalar.value, envp, s, w);
                }
                free(w);
                free(s);
            }
            free(key);
            key = NULL;
            break;
        case 4: /* 3. */
            phase = 5;
            break;
        case 5:
            if (t == YAML_STREAM_END_EVENT)
                done = true;
            else
                st = kiln_err_set(&c->err, KILN_ERR_FORMAT,
                                  "%s:%zu:%zu: expected the end of the file, got %s", path, line,
                                  col, event_what(t));
            break;
        }
        yaml_event_delete(&ev);
        if (st != KILN_OK || done)
            break;
    }
    free(key);
    return st;
}

/* Read path into c. missing_ok: a file that does not exist is no error. */
static enum kiln_status read_file(kiln_config *c, const char *full, bool missing_ok,
                                  const char *const *envp)
{
    kiln_shown_path shown = kiln_path_show(full); /* a long path never hides the reason */
    const char *path = shown.s;
    FILE *f = fopen(full, "rb");
    if (!f) {
        if (missing_ok && errno == ENOENT)
            return KILN_OK;
        return kiln_err_set(&c->err, errno == ENOMEM ? KILN_ERR_NOMEM : KILN_ERR_IO,
                            "%s: cannot open the configuration file: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return kiln_err_set(&c->err, KILN_ERR_IO, "%s: is a directory, not a configuration file",
                            path);
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        return kiln_err_set(&c->err, KILN_ERR_NOMEM, "%s: out of memory", path);
    }
    yaml_parser_set_input_file(&p, f);
    enum kiln_status st = read_mapping(c, &p, path, full, envp);
    yaml_parser_delete(&p);
    fclose(f);
    return st;
}

/* ---- Loading ----------------------------------------------------------------- */

static void config_free_slots(kiln_config *c)
{
    for (int i = 0; i < N_CONFIG_KEYS; i++) {
        free(c->slots[i].s);
        free(c->slots[i].source);
        c->slots[i] = (config_slot){0};
    }
}

/* Plan: 1. defaults; 2. the file (path, or when use_home the one KILN_CONFIG
** names, else ~/.kilnrc if present); 3. KILN_<KEY> variables. */
static enum kiln_status config_load(const char *path, bool use_home, const char *const *envp,
                                    kiln_config **out)
{
    kiln_config *c = calloc(1, sizeof *c);
    *out = c;
    if (!c)
        return KILN_ERR_NOMEM;
    enum kiln_status st = KILN_OK;

    /* 1. */
    for (int i = 0; st == KILN_OK && i < N_CONFIG_KEYS; i++) {
        const char *def = CONFIG_KEYS[i].def;
        if (strcmp(CONFIG_KEYS[i].name, "temp_dir") == 0) {
            def = env_get(envp, "TMPDIR");
            if (!def || !def[0])
                def = CONFIG_DEFAULT_TEMP_DIR;
        }
        if (def)
            st = set_slot(c, i, def, envp, "default", "default");
    }

    /* 2. */
    char *home_rc = NULL;
    if (st == KILN_OK && use_home) {
        const char *named = env_get(envp, "KILN_CONFIG");
        const char *home = env_get(envp, "HOME");
        if (named && named[0]) {
            st = read_file(c, named, false, envp);
        } else if (home && home[0]) {
            size_t n = strlen(home) + sizeof "/.kilnrc";
            home_rc = malloc(n);
            if (!home_rc)
                st = kiln_err_set(&c->err, KILN_ERR_NOMEM, "configuration: out of memory");
            else {
                snprintf(home_rc, n, "%s/.kilnrc", home);
                st = read_file(c, home_rc, true, envp);
            }
        }
    } else if (st == KILN_OK && path) {
        st = read_file(c, path, false, envp);
    }
    free(home_rc);

    /* 3. */
    for (int i = 0; st == KILN_OK && i < N_CONFIG_KEYS; i++) {
        char var[64];
        snprintf(var, sizeof var, CONFIG_ENV_PREFIX "%s", CONFIG_KEYS[i].name);
        for (char *q = var; *q; q++)
            *q = (char)toupper((unsigned char)*q);
        const char *v = env_get(envp, var);
        if (v && v[0]) { /* an empty variable counts as unset */
            char source[80];
            snprintf(source, sizeof source, "environment %s", var);
            st = set_slot(c, i, v, envp, source, source);
        }
    }
    c->loaded = st == KILN_OK;
    return st;
}

enum kiln_status kiln_config_load(kiln_config **out)
{
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    return config_load(NULL, true, (const char *const *)environ, out);
}

enum kiln_status kiln_config_load_from(const char *path, const char *const *envp,
                                       kiln_config **out)
{
    KILN_API_CHECK(out);
    if (!out)
        return KILN_ERR_ARG;
    return config_load(path, false, envp, out);
}

void kiln_config_destroy(kiln_config *c)
{
    if (!c)
        return;
    config_free_slots(c);
    free(c);
}

const char *kiln_config_errmsg(const kiln_config *c)
{
    return c ? c->err.msg : "out of memory";
}

kiln_config *kiln_config_copy(const kiln_config *c)
{
    kiln_config *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->loaded = c->loaded;
    for (int i = 0; i < N_CONFIG_KEYS; i++) {
        const config_slot *s = &c->slots[i];
        d->slots[i] = *s;
        d->slots[i].s = s->s ? kiln_strdup(s->s) : NULL;
        d->slots[i].source = s->source ? kiln_strdup(s->source) : NULL;
        if ((s->s && !d->slots[i].s) || (s->source && !d->slots[i].source)) {
            kiln_config_destroy(d);
            return NULL;
        }
    }
    return d;
}

/* ---- Getters -------------------------------------------------------------------- */

static const char *type_name(enum config_type t)
{
    switch (t) {
    case CONFIG_INT: return "an integer";
    case CONFIG_BOOL: return "a boolean";
    case CONFIG_STRING: return "a string";
    case CONFIG_PATH: return "a path (a string)";
    }
    return "?";
}

/* The slot of key if it is set and of a type in want; else a status. */
static enum kiln_status lookup(kiln_config *c, const char *key, bool want_string,
                               enum config_type want, const config_slot **out)
{
    if (!c->loaded)
        return kiln_err_set(&c->err, KILN_ERR_STATE,
                            "the configuration did not load; nothing can be read from it");
    int i = config_key_index(key);
    if (i < 0)
        return kiln_err_set(&c->err, KILN_ERR_NOT_FOUND,
                            "unknown setting '%.64s' (kiln knows: " CONFIG_KEY_LIST ")", key);
    const config_key *k = &CONFIG_KEYS[i];
    bool is_string = k->type == CONFIG_STRING || k->type == CONFIG_PATH;
    if (want_string ? !is_string : k->type != want)
        return kiln_err_set(&c->err, KILN_ERR_ARG, "setting %s is %s, not %s", key,
                            type_name(k->type), want_string ? "a string" : type_name(want));
    if (!c->slots[i].set) {
        char var[64];
        snprintf(var, sizeof var, CONFIG_ENV_PREFIX "%s", key);
        for (char *q = var; *q; q++)
            *q = (char)toupper((unsigned char)*q);
        return kiln_err_set(&c->err, KILN_ERR_NOT_FOUND,
                            "setting %s is not set and has no default: set it in the "
                            "configuration file (~/.kilnrc, or the file KILN_CONFIG names) or "
                            "with the environment variable %s",
                            key, var);
    }
    *out = &c->slots[i];
    return KILN_OK;
}

/* lookup() behind the checks of a getter's arguments (fn names it). */
static enum kiln_status get_slot(kiln_config *c, const char *key, const void *out, const char *fn,
                                 bool want_string, enum config_type want, const config_slot **slot)
{
    KILN_API_CHECK(c && key && out);
    if (!c || !key || !out)
        return c ? kiln_err_set(&c->err, KILN_ERR_ARG, "%s: %s is NULL", fn, !key ? "key" : "out")
                 : KILN_ERR_ARG;
    return lookup(c, key, want_string, want, slot);
}

enum kiln_status kiln_config_get_int(kiln_config *c, const char *key, int64_t *out)
{
    const config_slot *s;
    enum kiln_status st = get_slot(c, key, out, "kiln_config_get_int", false, CONFIG_INT, &s);
    if (st == KILN_OK)
        *out = s->i;
    return st;
}

enum kiln_status kiln_config_get_bool(kiln_config *c, const char *key, bool *out)
{
    const config_slot *s;
    enum kiln_status st = get_slot(c, key, out, "kiln_config_get_bool", false, CONFIG_BOOL, &s);
    if (st == KILN_OK)
        *out = s->b;
    return st;
}

enum kiln_status kiln_config_get_string(kiln_config *c, const char *key, const char **out)
{
    const config_slot *s;
    enum kiln_status st = get_slot(c, key, out, "kiln_config_get_string", true, CONFIG_STRING, &s);
    if (st == KILN_OK)
        *out = s->s;
    return st;
}

const char *kiln_config_source(const kiln_config *c, const char *key)
{
    KILN_API_CHECK(c);
    int i = c ? config_key_index(key) : -1;
    if (i < 0)
        return "";
    return c->slots[i].set ? c->slots[i].source : "unset";
}

enum kiln_status kiln_config_resolve_seed(uint64_t seed, uint64_t *out, kiln_err *err)
{
    if (seed != KILN_SEED_DEFAULT) {
        *out = seed;
        return KILN_OK;
    }
    kiln_config *c = NULL;
    enum kiln_status st = kiln_config_load(&c);
    int64_t v = 0;
    if (st == KILN_OK)
        st = kiln_config_get_int(c, "default_seed", &v);
    if (st != KILN_OK)
        kiln_err_set(err, st, "configuration: %s", kiln_config_errmsg(c));
    else
        *out = (uint64_t)v;
    kiln_config_destroy(c);
    return st;
}
