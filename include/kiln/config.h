/* kiln/config.h: the configuration (Blocks' blocks.config).
**
** Settings come from three layers, each overriding the one below:
**   1. defaults;
**   2. a YAML file of `key: value` lines: the file named by KILN_CONFIG, or
**      ~/.kilnrc when KILN_CONFIG is unset (a missing ~/.kilnrc is no
**      error; a missing KILN_CONFIG file is);
**   3. environment variables KILN_<KEY> (the key upper-cased:
**      KILN_DEFAULT_SEED, KILN_LOG_BACKEND, ...).
**
** | key             | type    | default              | used by                            |
** | default_seed    | integer | 1                    | bricks without a seed, streams and |
** |                 |         |                      | random states given KILN_SEED_DEFAULT |
** | fast_paths      | boolean | true                 | kiln_compile: false compiles every |
** |                 |         |                      | program as no_fast_paths does      |
** | log_backend     | string  | memory               | main loops: memory or sqlite       |
** | sqlite_database | path    | none                 | main loops whose log_backend is sqlite |
** | temp_dir        | path    | $TMPDIR, else /tmp   | temporary files                    |
** | profile         | boolean | false                | main loops: timing report at the end |
**
** Paths starting with "~/" are taken relative to $HOME. Booleans are YAML's
** (true/false, yes/no, on/off, any case) or 1/0. A file that is not valid
** YAML, is not a mapping, names a key kiln does not know or gives a value of
** the wrong type is an error naming the file, line and column; a bad
** environment variable is an error naming it. Everything is checked when the
** configuration is loaded.
**
** A kiln_config is an ordinary object: kiln keeps no global configuration.
** kiln_compile, kiln_main_loop_create, brick initialization and KILN_SEED_DEFAULT load
** the configuration when they need it (so a change of the file or of the
** environment counts from the next such call on). */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_config kiln_config;

/* Load defaults, file and environment as above. *out is caller-owned
** (kiln_config_destroy), set even on failure (NULL only when out of memory).
** KILN_OK, KILN_ERR_IO (the file exists but cannot be read; KILN_CONFIG names
** a missing file), KILN_ERR_FORMAT (malformed file, unknown key, bad value),
** KILN_ERR_NOMEM. */
KILN_API enum kiln_status kiln_config_load(kiln_config **out);
/* The same from an explicit file (path NULL: no file) and environment
** (envp: a NULL-terminated array of "NAME=value" strings as environ is;
** NULL: no variables). Reads neither HOME, KILN_CONFIG nor the process's
** environment: what tests and embedding programs use to be hermetic.
** kiln_config_load_from(NULL, NULL, &c) gives the defaults. */
KILN_API enum kiln_status kiln_config_load_from(const char *path, const char *const *envp,
                                                kiln_config **out);
KILN_API void kiln_config_destroy(kiln_config *c);
/* The message of c's last failure, valid until the next call on c. */
KILN_API const char *kiln_config_errmsg(const kiln_config *c);

/* Read a setting. KILN_OK; KILN_ERR_NOT_FOUND when key is no setting kiln
** knows (the message lists them) or is unset and has no default (the
** message names the key, the file and the variable that would set it);
** KILN_ERR_ARG when the setting has another type (the message says which);
** KILN_ERR_STATE when c failed to load. A string is borrowed from c (valid
** while c lives). */
KILN_API enum kiln_status kiln_config_get_int(kiln_config *c, const char *key, int64_t *out);
KILN_API enum kiln_status kiln_config_get_bool(kiln_config *c, const char *key, bool *out);
KILN_API enum kiln_status kiln_config_get_string(kiln_config *c, const char *key,
                                                 const char **out);
/* Where the value of key came from: "default", "unset", "<file>:<line>"
** or "environment KILN_<KEY>" (borrowed from c); "" for an unknown key. */
KILN_API const char *kiln_config_source(const kiln_config *c, const char *key);

#ifdef __cplusplus
}
#endif
#endif
