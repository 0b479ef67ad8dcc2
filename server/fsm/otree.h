/* An ordered container: an intrusive AVL tree with parent links, so that
 * lookups, inserts and removals are O(log n) and in-order walks (list with
 * a prefix, start after a name, next deadline) need no hash table whose
 * order could differ between replicas. */
#ifndef SYNOD_FSM_OTREE_H
#define SYNOD_FSM_OTREE_H

#include <stddef.h>
#include <stdint.h>

/* Embedded in the object it orders; 24 bytes. Zero-initialised is fine
 * before insertion. Only otree.c reads the links: each child link also
 * carries 3 bits of the node's height (see there). */
struct otree_node {
  struct otree_node *parent;
  uintptr_t left_link;
  uintptr_t right_link;
};

/* Compares a key with the key of a node in the tree: < 0, 0 or > 0 when
 * `key` sorts before, equal to or after `node`. */
typedef int (*otree_cmp_fn)(const void *key, const struct otree_node *node);

struct otree {
  struct otree_node *root;
  size_t count;
  otree_cmp_fn cmp;
};

/* Initialises an empty tree ordered by cmp. Owns nothing. */
void otree_init(struct otree *t, otree_cmp_fn cmp);

/* Returns the node equal to key, or NULL. */
struct otree_node *otree_find(const struct otree *t, const void *key);

/* Returns the first node >= key (or > key when strict), or NULL. */
struct otree_node *otree_lower_bound(const struct otree *t, const void *key,
                                     int strict);

/* Inserts n under key (n's own key). Returns NULL, or the node already in
 * the tree with an equal key, in which case n is not inserted. The tree
 * borrows n until otree_remove. */
struct otree_node *otree_insert(struct otree *t, struct otree_node *n,
                                const void *key);

/* Removes n, which must be in t. */
void otree_remove(struct otree *t, struct otree_node *n);

/* The smallest node, or NULL when empty. */
struct otree_node *otree_first(const struct otree *t);

/* The in-order successor of n, or NULL. */
struct otree_node *otree_next(const struct otree_node *n);

/* Checks the AVL and parent invariants and the order; returns the number of
 * nodes, or (size_t)-1 if broken. For tests. */
size_t otree_check(const struct otree *t);

#endif
