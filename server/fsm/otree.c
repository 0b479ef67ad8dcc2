/* An intrusive AVL tree with parent links: the fsm's ordered container. */
#include "otree.h"

#include <assert.h>

static int height(const struct otree_node *n) {
  return n ? n->height : 0;
}

static void height_update(struct otree_node *n) {
  int l = height(n->left), r = height(n->right);
  n->height = (l > r ? l : r) + 1;
}

/* Points old's parent (or the root) at new_. */
static void child_replace(struct otree *t, struct otree_node *parent,
                          struct otree_node *old, struct otree_node *new_) {
  if (parent == NULL) {
    t->root = new_;
  } else if (parent->left == old) {
    parent->left = new_;
  } else {
    parent->right = new_;
  }
}

static struct otree_node *rotate_left(struct otree *t, struct otree_node *x) {
  struct otree_node *y = x->right;
  x->right = y->left;
  if (y->left) {
    y->left->parent = x;
  }
  y->parent = x->parent;
  child_replace(t, x->parent, x, y);
  y->left = x;
  x->parent = y;
  height_update(x);
  height_update(y);
  return y;
}

static struct otree_node *rotate_right(struct otree *t, struct otree_node *x) {
  struct otree_node *y = x->left;
  x->left = y->right;
  if (y->right) {
    y->right->parent = x;
  }
  y->parent = x->parent;
  child_replace(t, x->parent, x, y);
  y->right = x;
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
    int bf = height(n->left) - height(n->right);
    if (bf > 1) {
      if (height(n->left->left) < height(n->left->right)) {
        rotate_left(t, n->left);
      }
      n = rotate_right(t, n);
    } else if (bf < -1) {
      if (height(n->right->right) < height(n->right->left)) {
        rotate_right(t, n->right);
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
    n = c < 0 ? n->left : n->right;
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
      n = n->left;
    } else {
      n = n->right;
    }
  }
  return best;
}

struct otree_node *otree_insert(struct otree *t, struct otree_node *n,
                                const void *key) {
  struct otree_node *parent = NULL, **link = &t->root;
  while (*link) {
    int c = t->cmp(key, *link);
    if (c == 0) {
      return *link;
    }
    parent = *link;
    link = c < 0 ? &parent->left : &parent->right;
  }
  n->parent = parent;
  n->left = n->right = NULL;
  n->height = 1;
  *link = n;
  t->count++;
  fix_up(t, parent);
  return NULL;
}

void otree_remove(struct otree *t, struct otree_node *n) {
  struct otree_node *from;
  assert(t->count > 0);
  if (n->left == NULL || n->right == NULL) {
    struct otree_node *child = n->left ? n->left : n->right;
    child_replace(t, n->parent, n, child);
    if (child) {
      child->parent = n->parent;
    }
    from = n->parent;
  } else {
    /* Put n's successor s (which has no left child) in n's place. */
    struct otree_node *s = n->right;
    while (s->left) {
      s = s->left;
    }
    if (s->parent != n) {
      from = s->parent;
      child_replace(t, s->parent, s, s->right);
      if (s->right) {
        s->right->parent = s->parent;
      }
      s->right = n->right;
      n->right->parent = s;
    } else {
      from = s;
    }
    s->left = n->left;
    n->left->parent = s;
    child_replace(t, n->parent, n, s);
    s->parent = n->parent;
    s->height = n->height;
  }
  t->count--;
  n->parent = n->left = n->right = NULL;
  fix_up(t, from);
}

struct otree_node *otree_first(const struct otree *t) {
  struct otree_node *n = t->root;
  while (n && n->left) {
    n = n->left;
  }
  return n;
}

struct otree_node *otree_next(const struct otree_node *n) {
  if (n->right) {
    n = n->right;
    while (n->left) {
      n = n->left;
    }
    return (struct otree_node *)n;
  }
  while (n->parent && n->parent->right == n) {
    n = n->parent;
  }
  return n->parent;
}

/* Returns the height of the subtree, or -1 when an invariant is broken. */
static int check_node(const struct otree_node *n, size_t *count) {
  if (n == NULL) {
    return 0;
  }
  if ((n->left && n->left->parent != n) ||
      (n->right && n->right->parent != n)) {
    return -1;
  }
  int l = check_node(n->left, count), r = check_node(n->right, count);
  if (l < 0 || r < 0 || l - r > 1 || r - l > 1 ||
      n->height != (l > r ? l : r) + 1) {
    return -1;
  }
  (*count)++;
  return n->height;
}

size_t otree_check(const struct otree *t) {
  size_t count = 0;
  if ((t->root && t->root->parent) || check_node(t->root, &count) < 0 ||
      count != t->count) {
    return (size_t)-1;
  }
  return count;
}
