// Datasets: loaders that read a corpus in its distributed on-disk layout into
// one in-memory list of items (audio path, label, fold or split) plus the
// class names, the evaluation protocol of each corpus (which items form the
// train / valid / test split of a fold), and few-shot subsets.
//
// Layouts (root may be the corpus folder itself or the folder holding it,
// e.g. "data" or "data/ESC-50"):
//   esc50   ESC-50/meta/esc50.csv (filename,fold,target,category,...),
//           ESC-50/audio/<filename>. 5 folds, label = target, name = category.
//   us8k    UrbanSound8K/metadata/UrbanSound8K.csv (slice_file_name,fold,
//           classID,class,...), UrbanSound8K/audio/fold<k>/<slice_file_name>.
//           10 folds, label = classID, name = class.
//   gsc     speech_commands_v0.02/<word>/<speaker>_nohash_<n>.wav with
//           validation_list.txt and testing_list.txt (paths relative to the
//           root); train = every other file. Classes = the word folders, sorted;
//           folders starting with '_' or '.' (_background_noise_) are not classes.
//   fsc     fluent_speech_commands_dataset/data/{train,valid,test}_data.csv
//           (path,action,object,location,...), paths relative to the corpus
//           folder. Label = intent "action/object/location"; intents are
//           collected over all three files and sorted.
//   folder  root/<class>/*.wav|*.flac, classes = folders sorted as for gsc.
//           Optional root/{train,valid,test}.txt list files ("<class>/<file>"
//           per line). With train.txt, unlisted files are left out; without
//           it, unlisted files are train. With no list at all the split is
//           drawn per class from split_seed: a seeded shuffle of the class's
//           files (sorted by name first, so directory order does not matter),
//           the first round(10%) valid, the next round(10%) test, the rest
//           train (a class of fewer than 3 files is all train).
//
// Protocols (dataset_split):
//   esc50  test fold k (1..5), valid fold (k mod 5) + 1, train the other 3:
//          k=1 -> valid 2, k=2 -> 3, ..., k=5 -> 1, so over the 5 rotations
//          every fold is test once and valid once.
//   us8k   test fold k (1..10), train the other 9, no valid set.
//   gsc, fsc, folder: fixed splits; they have one fold, number 1.
//
// Item order: CSV row order for esc50, us8k and fsc (train, valid, test file
// in turn); sorted relative path for gsc and folder. Errors (missing CSV
// column, unknown label, empty class, audio file named by a list or CSV but
// absent) are PETAL_EINPUT with one line naming the file.
#ifndef PETAL_DATASET_H
#define PETAL_DATASET_H
#include <stdint.h>

#include "core/common.h"

enum { DATASET_ESC50, DATASET_US8K, DATASET_GSC, DATASET_FSC, DATASET_FOLDER, DATASET_NLAYOUTS };
enum { DATASET_TRAIN, DATASET_VALID, DATASET_TEST, DATASET_NSPLITS };
// Few-shot selection modes.
enum {
    FEWSHOT_UNIFORM,  // k drawn uniformly at random per class (seeded)
    FEWSHOT_FIRST,    // the first k per class in item order, as the reference does
};

typedef struct {
    const char *path;  // audio file, root-joined (openable as given)
    const char *rel;   // the same path relative to the corpus folder
    int label;         // 0..K-1
    int fold;          // 1..n_folds for esc50 / us8k; 0 for fixed-split layouts
    int split;         // DATASET_TRAIN/VALID/TEST for fixed-split layouts; -1 for folds
} dataset_item;

typedef struct {
    int layout;           // DATASET_ESC50, ...
    char base[4096];      // corpus folder the relative paths start from
    int N;                // items
    int K;                // classes
    int n_folds;          // 5 esc50, 10 us8k, 1 for fixed-split layouts
    dataset_item *items;  // (N)
    const char **classes; // (K) class names, index = label
    char *strings;        // backing store of every path and class name
} dataset;

// Layout from its name ("esc50", "us8k", "gsc", "fsc", "folder"); -1 if unknown.
int dataset_layout_parse(const char *name);
const char *dataset_layout_name(int layout);
const char *dataset_split_name(int split);

// Loads the corpus at root in the given layout. split_seed only matters for
// the folder layout without list files. On error ds is left empty.
int dataset_load(dataset *ds, int layout, const char *root, uint64_t split_seed, petal_err *err);
void dataset_free(dataset *ds);

// Indices (into ds->items, ascending) of split `split` when fold `fold` is the
// test fold (see the protocols above). idx has room for ds->N; *n gets the
// count, which may be 0 (us8k has no valid set). A fold outside 1..n_folds or
// a bad split -> PETAL_EINPUT.
int dataset_split(int *idx, int *n, const dataset *ds, int split, int fold, petal_err *err);

// Few-shot subset of the items idx[0..n) (one split): k per class.
// FEWSHOT_UNIFORM: each class's items are sorted by path, shuffled with a
// generator seeded from (seed, class), and the first k kept, so the subset
// does not depend on directory or CSV order, the same seed gives the same
// subset, and for one seed the k-shot set is contained in the 2k-shot set.
// FEWSHOT_FIRST: the first k of each class in idx order (the reference's
// choice; it matches the reference exactly for the CSV layouts, while for gsc
// and folder "first" is in sorted-name order, since the directory order the
// reference used is not reproducible). A class with fewer than k items gives all it has: counts[c] (K
// entries, may be NULL) says how many were taken, so callers can report it.
// out (room for n) gets the chosen indices in ascending order; returns their
// number.
int dataset_fewshot(int *out, int *counts, const dataset *ds, const int *idx, int n, int k,
                    uint64_t seed, int mode);

// Formats "name (count), ..." of the classes with counts[c] < k into msg and
// returns how many there are (0: every class got k).
int dataset_fewshot_short(char *msg, size_t cap, const dataset *ds, const int *counts, int k);
#endif
