/* kiln/checkpoint.h: checkpoints that resume a run exactly (Blocks'
** Checkpoint and Load, serialization).
**
** A checkpoint is one HDF5 file (readable with h5py and h5dump; the layout
** is in docs/checkpoints.md) holding everything a run needs to go on as if
** it had never stopped: the parameters by brick path, every state of the
** program (optimiser state, hyperparameters, random state), the data
** stream's iteration state (epoch, position in the epoch, the epoch's order
** and the shuffle generator), the main loop's status and log, and the
** SHA-256 of the program's generated source. Train k batches, checkpoint,
** kill the process, load the checkpoint into a fresh loop over the same
** graph and stream and train on: the parameters, optimiser state and log
** are bit for bit those of a run that never stopped.
**
** Saving writes a temporary file in the checkpoint's folder, flushes it to
** disk (fsync) and renames it over the path, so a crash at any moment leaves
** either the previous checkpoint or the new one, never a torn file. Loading
** never compiles: the program is the caller's (compiling the same graph
** again finds it in the cache).
**
** Checkpoint files are untrusted: every size, shape and dtype is checked
** against the program and stream before anything is copied, and a SHA-256
** over the contents catches corruption; a file that fails any check changes
** nothing. Errors name the file and what is wrong, e.g.
**   ckpt.h5: /params/mlp/linear_0/W: shape (784, 200), the program expects (784, 100) */
#ifndef KILN_CHECKPOINT_H
#define KILN_CHECKPOINT_H

#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Save m's program, stream, status and log to path (copied). Call between
** steps: before a run, after one, or from an extension (not in
** before_batch, whose batch is drawn but not trained). A log kept in an
** SQLite file stays there (the checkpoint records its status; loading
** truncates the file back to it). KILN_OK; KILN_ERR_ARG (NULL); KILN_ERR_IO
** (the folder is missing or not writable, the disk is full; path is left as
** it was); KILN_ERR_NOMEM. The message on m (kiln_main_loop_errmsg). */
KILN_API enum kiln_status kiln_checkpoint_save(kiln_main_loop *m, const char *path);
/* Load the checkpoint at path into m, which must run the same program (the
** same graph and options: its source hash) over a stream like the one saved
** (scheme, batch size, examples). Everything is checked before anything of
** m changes; then the parameters, states, stream, status and log are
** replaced, and the next kiln_main_loop_run resumes (on_resumption, then
** the interrupted epoch goes on). Only before the loop's first run
** (KILN_ERR_STATE otherwise; the Load extension below loads in
** before_training). KILN_ERR_IO (no such
** file, unreadable), KILN_ERR_FORMAT (not a kiln checkpoint, truncated,
** corrupted), KILN_ERR_SHAPE (written for another program or stream),
** KILN_ERR_NOMEM. The message on m names path and what is wrong. */
KILN_API enum kiln_status kiln_checkpoint_load(kiln_main_loop *m, const char *path);

/* The same without a main loop: p's parameters and states, and stream s's
** iteration state when s is not NULL (NULL: none saved; none restored, even
** when the file has one). Status and log are not saved (a main loop's
** are: kiln_checkpoint_save). The message on p. */
KILN_API enum kiln_status kiln_checkpoint_save_program(kiln_program *p, kiln_stream *s,
                                                       const char *path);
KILN_API enum kiln_status kiln_checkpoint_load_program(kiln_program *p, kiln_stream *s,
                                                       const char *path);

/* Blocks' Checkpoint(path): save the main loop to path (copied) on its
** triggers: after_training by default (Blocks' default); add
** KILN_TRIGGER_EVERY_N_EPOCHS / _EVERY_N_BATCHES / _ON_INTERRUPT with
** kiln_extension_add_trigger. After each save it records saved_to = path in
** the current row (Blocks' SAVED_TO), so the checkpoint holds the log as it
** was before that record: add Checkpoint after the extensions that write
** the row it saves. A save that fails stops the run with the message. An
** extension named "Checkpoint"; NULL only when out of memory. */
KILN_API kiln_extension *kiln_checkpoint(const char *path);
/* Blocks' Load(path, load_iteration_state, load_log): before_training,
** load the checkpoint at path (copied): the parameters and states, and with
** load_iteration_state the stream's iteration state and the loop's status,
** with load_log the log; then records loaded_from = path (Blocks'
** LOADED_FROM), and a loop whose status was loaded resumes (on_resumption,
** the interrupted epoch goes on). As in Blocks, a path where no file exists
** loads nothing (a fresh run); any other failure stops the run with the
** message. An extension named "Load"; NULL only when out of memory. */
KILN_API kiln_extension *kiln_load(const char *path, bool load_iteration_state, bool load_log);

#ifdef __cplusplus
}
#endif
#endif
