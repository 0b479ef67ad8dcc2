/* An intrusive AVL tree with parent links: the fsm's ordered container. */
#include "otree.h"

#include <assert.h>

/* A node's height (1 for a leaf; |height(left) - height(right)| <= 1)
 * rides in its child links: nodes are at least 8-byte aligned, so each
 * link has 3 low bits free; the left link holds the height's low 3 bits
 * and the right link its high 3. An AVL tree of height 63 would hold
 * over 2^43 nodes. That saves a node 8 bytes (a separate height and its
 * padding): 8 bytes of every key, lock, session and channel the state
 * machine holds. */
#define LINK_BITS 3
#define LINK_MASK ((uintptr_t)(1u << LINK_BITS) - 1)
_Static_assert(_Alignof(struct otree_node) >= 1u << LINK_BITS,
               "a node's links have LINK_BITS bits free");

static struct otree_node *left(const struct otree_node *n) {
  return (struct otree_node *)(n->left_link & ~LINK_MASK);
}

static struct otree_node *right(const struct otree_node *n) {
  return (struct otree_node *)(n->right_link & ~LINK_MASK);
}

static void set_left(struct otree_node *n, struct otree_node *c) {
  assert(((uintptr_t)c & LINK_MASK) == 0);
  n->left_link = (uintptr_t)c | (n->left_link & LINK_MASK);
}

static void set_right(struct otree_node *n, struct otree_node *c) {
  assert(((uintptr_t)c & LINK_MASK) == 0);
  n->right_link = (uintptr_t)c | (n->right_link & LINK_MASK);
}

static int height(const struct otree_node *n) {
  return n ? (int)((n->left_link & LINK_MASK) | (n->right_link & LINK_MASK)
                                                    << LINK_BITS)
           : 0;
}

static void set_height(struct otree_node *n, int h) {
  assert(h > 0 && h < 1 << 2 * LINK_BITS);
  n->left_link = (n->left_link & ~LINK_MASK) | ((uintptr_t)h & LINK_MASK);
  n->right_link =
      (n->right_link & ~LINK_MASK) | ((uintptr_t)h >> LINK_BITS & LINK_MASK);
}

static void height_update(struct otree_node *n) {
  int l = height(left(n)), r = height(right(n));
  set_height(n, (l > r ? l : r) + 1);
}

/* Points old's parent (or the root) at new_. */
static void child_replace(struct otree *t, struct otree_node *parent,
                          struct otree_node *old, struct otree_node *new_) {
  if (parent == NULL) {
    t->root = new_;
  } else if (left(parent) == old) {
    set_left(parent, new_);
  } else {
    set_right(parent, new_);
  }
}

static struct otree_node *rotate_left(struct otree *t, struct otree_node *x) {
  struct otree_node *y = right(x);
  set_right(x, left(y));
  if (left(y)) {
    left(y)->parent = x;
  }
  y->parent = x->parent;
  child_replace(t, x->parent, x, y);
  set_left(y, x);
  x->parent = y;
  height_update(x);
  height_update(y);
  return y;
}

static struct otree_node *rotate_right(struct otree *t, struct otree_node *x) {
  struct otree_node *y = left(x);
  set_left(x, right(y));
  if (right(y)) {
    right(y)->parent = x;
  }
  y->parent = x->parent;
  child_replace(t, x->parent, x, y);
  set_right(y, x);
  x->parent = y;
  height_update(x);
  height_update(y);
  return y;
}

/* Restores heights and balance from n up to the root. Walking all the way
 * up is O(log n) and simpler than deciding where to stop. */
static void fix_up(struct otree *t, struct otree_node *n) {
  while (n) {
    height_update(n);
    int bf = height(left(n)) - height(right(n));
    if (bf > 1) {
      if (height(left(left(n))) < height(right(left(n)))) {
        rotate_left(t, left(n));
      }
      n = rotate_right(t, n);
    } else if (bf < -1) {
      if (height(right(right(n))) < height(left(right(n)))) {
        rotate_right(t, right(n));
      }
      n = rotate_left(t, n);
    }
    n = n->parent;
  }
}

void otree_init(struct otree *t, otree_cmp_fn cmp) {
  t->root = NULL;
  t->count = 0;
  t->cmp = cmp;
}

struct otree_node *otree_find(const struct otree *t, const void *key) {
  struct otree_node *n = t->root;
  while (n) {
    int c = t->cmp(key, n);
    if (c == 0) {
      return n;
    }
    n = c < 0 ? left(n) : right(n);
  }
  return NULL;
}

struct otree_node *otree_lower_bound(const struct otree *t, const void *key,
                                     int strict) {
  struct otree_node *n = t->root, *best = NULL;
  while (n) {
    int c = t->cmp(key, n);
    if (c < 0 || (c == 0 && !strict)) {
      best = n;
      n = left(n);
    } else {
      n = right(n);
    }
  }
  return best;
}

struct otree_node *otree_insert(struct otree *t, struct otree_node *n,
                                const void *key) {
  struct otree_node *parent = NULL, *at = t->root;
  int c = 0;
  while (at) {
    c = t->cmp(key, at);
    if (c == 0) {
      return at;
    }
    parent = at;
    at = c < 0 ? left(at) : right(at);
  }
  n->parent = parent;
  n->left_link = n->right_link = 0;
  set_height(n, 1);
  if (parent == NULL) {
    t->root = n;
  } else if (c < 0) {
    set_left(parent, n);
  } else {
    set_right(parent, n);
  }
  t->count++;
  fix_up(t, parent);
  return NULL;
}

void otree_remove(struct otree *t, struct otree_node *n) {
  struct otree_node *from;
  assert(t->count > 0);
  if (left(n) == NULL || right(n) == NULL) {
    struct otree_node *child = left(n) ? left(n) : right(n);
    child_replace(t, n->parent, n, child);
    if (child) {
      child->parent = n->parent;
    }
    from = n->parent;
  } else {
    /* Put n's successor s (which has no left child) in n's place. */
    struct otree_node *s = right(n);
    while (left(s)) {
      s = left(s);
    }
    if (s->parent != n) {
      from = s->parent;
      child_replace(t, s->parent, s, right(s));
      if (right(s)) {
        right(s)->parent = s->parent;
      }
      set_right(s, right(n));
      right(n)->parent = s;
    } else {
      from = s;
    }
    set_left(s, left(n));
    left(n)->parent = s;
    child_replace(t, n->parent, n, s);
    s->parent = n->parent;
    set_height(s, height(n));
  }
  t->count--;
  n->parent = NULL;
  n->left_link = n->right_link = 0;
  fix_up(t, from);
}

struct otree_node *otree_first(const struct otree *t) {
  struct otree_node *n = t->root;
  while (n && left(n)) {
    n = left(n);
  }
  return n;
}

struct otree_node *otree_next(const struct otree_node *n) {
  if (right(n)) {
    n = right(n);
    while (left(n)) {
      n = left(n);
    }
    return (struct otree_node *)n;
  }
  while (n->parent && right(n->parent) == n) {
    n = n->parent;
  }
  return n->parent;
}

/* Returns the height of the subtree, or -1 when an invariant is broken. */
static int check_node(const struct otree_node *n, size_t *count) {
  if (n == NULL) {
    return 0;
  }
  if ((left(n) && left(n)->parent != n) ||
      (right(n) && right(n)->parent != n)) {
    return -1;
  }
  int l = check_node(left(n), count), r = check_node(right(n), count);
  if (l < 0 || r < 0 || l - r > 1 || r - l > 1 ||
      height(n) != (l > r ? l : r) + 1) {
    return -1;
  }
  (*count)++;
  return height(n);
}

size_t otree_check(const struct otree *t) {
  size_t count = 0;
  if ((t->root && t->root->parent) || check_node(t->root, &count) < 0 ||
      count != t->count) {
    return (size_t)-1;
  }
  return count;
}
