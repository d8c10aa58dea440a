/*
 * Direct slot access for the model's __slots__ dataclasses.
 *
 * Why: building a PrimaryBlock through its dataclass __init__ costs about half a microsecond,
 * more than decoding its bytes. A class with __slots__ stores each field at a fixed offset in
 * the instance, published by the member descriptor in the class __dict__ (PyMemberDef). We read
 * that offset once at import, after checking that the descriptor really is a plain object slot
 * (T_OBJECT_EX, writable); the codec then allocates with tp_alloc and stores the fields directly.
 * If any check fails the caller uses setattr instead, so a model change can slow the codec down
 * but never break it.
 */
#ifndef WS_PYSLOTS_H
#define WS_PYSLOTS_H

#include <Python.h>
#include <structmember.h>

/* Offset of the object slot described by `descr`, or -1 if it is not a plain writable slot. */
static Py_ssize_t ws_slot_offset(PyObject *descr) {
    PyMemberDef *def;
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        return -1;
    }
    def = ((PyMemberDescrObject *)descr)->d_member;
    if (def == NULL || def->type != T_OBJECT_EX || (def->flags & READONLY)) {
        return -1;
    }
    return def->offset;
}

/* Store `value` (new reference taken here) into the slot at `offset`, dropping the old one. */
static inline void ws_slot_set(PyObject *obj, Py_ssize_t offset, PyObject *value) {
    PyObject **addr = (PyObject **)((char *)obj + offset);
    PyObject *old = *addr;
    Py_INCREF(value);
    *addr = value;
    Py_XDECREF(old);
}

/* Borrowed reference to the slot's value, or NULL if unset. */
static inline PyObject *ws_slot_get(PyObject *obj, Py_ssize_t offset) {
    return *(PyObject **)((char *)obj + offset);
}

/* A new, empty instance of a __slots__ class (all slots NULL), bypassing __init__. */
static inline PyObject *ws_alloc(PyObject *type) {
    PyTypeObject *t = (PyTypeObject *)type;
    return t->tp_alloc(t, 0);
}

/* Allocate an instance of a tuple subclass (e.g. a NamedTuple) holding two new references. */
static inline PyObject *ws_tuple2_new(PyObject *type, PyObject *a, PyObject *b) {
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *t = tp->tp_alloc(tp, 2);
    if (t == NULL) {
        return NULL;
    }
    Py_INCREF(a);
    Py_INCREF(b);
    PyTuple_SET_ITEM(t, 0, a);
    PyTuple_SET_ITEM(t, 1, b);
    return t;
}

/* Narrow a fresh 1-D byte memoryview (one we just made, nobody else holds it) to
 * [start, start + len) in place -- what slicing does, minus a second memoryview object.
 * Returns -1 (and leaves `mv` untouched) if the view is not a plain contiguous byte view. */
static int ws_memoryview_narrow(PyObject *mv, Py_ssize_t start, Py_ssize_t len) {
    Py_buffer *v = PyMemoryView_GET_BUFFER(mv);
    if (v->ndim != 1 || v->itemsize != 1 || v->shape == NULL ||
        (v->strides != NULL && v->strides[0] != 1) || start < 0 || len < 0 ||
        start > v->len - len) {
        return -1;
    }
    v->buf = (char *)v->buf + start;
    v->len = len;
    v->shape[0] = len;
    return 0;
}

#endif /* WS_PYSLOTS_H */
