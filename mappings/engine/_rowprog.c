/* Row programs: a mapping's read rules for database rows, run in C.
 *
 * Why C: reading an ODBC history row into a canonical Transaction (two Money, a datetime, two
 * Decimals) costs more in the interpreter than pyodbc's fetch of the row, however the Python is
 * arranged (mappings/engine/fastpath.py generates the best Python we found); the adapter's
 * throughput goal needs it well below that.  No library builds pydantic instances from database
 * rows, so this module is ours.  It is optional: without it (no compiler at install time, or
 * COREBRIDGE_BACKENDS__ODBC__NATIVE_ROWS=false) the generated Python runs, with the same results.
 *
 * The contract is the generated Python's (see mappings/engine/native.py, which compiles a
 * mapping into a program): a program either builds exactly the object the generated function
 * builds for a row, or gives up on the row, and the caller reads that row with the generated
 * function, which answers or reports the precise error.  Every op below mirrors one inline form
 * of mappings/engine/transforms.py; wherever that form would call its closure, the op gives up.
 *
 * A program is a tuple of ops, each a tuple (opcode, dst, args...); registers hold references
 * and are cleared after every row.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <structmember.h>

#if PY_VERSION_HEX >= 0x030D0000
#define _PyDict_NewPresized(n) PyDict_New() /* private since 3.13 */
#endif

enum {
    OP_LOAD = 0,      /* dst, column index */
    OP_CONST = 1,     /* dst, value */
    OP_STRIP = 2,     /* dst, src, side (0 both, 1 right, 2 left): exact str -> s.strip(); None -> None */
    OP_NULLIF = 3,    /* dst, src, frozenset: None if src in set else src */
    OP_INTDIGITS = 4, /* dst, src: exact int kept; exact ASCII-digit str -> int; None -> None */
    OP_CONCAT = 5,    /* dst, sep, (srcs): exact str / int parts joined */
    OP_LOOKUP = 6,    /* dst, src, dict, parse or None: hit -> value, miss -> parse(src) (None: give up);
                         None -> None */
    OP_DATETIME = 7,  /* dst, src, time src, date cache, tz, parse: the date via cache or parse + HHMMSS */
    OP_DECIMAL = 8,   /* dst, src, Decimal type, quantum: exact str -> exact Decimal */
    OP_SIGN = 9,      /* dst, src, indicator src, negative set, positive set */
    OP_MONEY = 10,    /* dst, src, currency src (-1: fixed), fixed, of, quantum_of, max digits, Money, keys,
                         minor units {currency: places} */
    OP_REQUIRE = 11,  /* src: None gives up */
    OP_DEFAULT = 12,  /* src, default: None -> default */
    OP_CHECK = 13,    /* src, check, optional bit (0: always set) */
    OP_BUILD = 14,    /* dst, model, keys, (srcs), fields-set table, (after validators): each validator a
                         callable, or (callable, (a, b, attr or None, none_ok)): called only where that
                         guard does not hold (see guard_holds) */
};

enum {
    CK_STR = 1,        /* lo, hi, passed set or None, test or None */
    CK_NULLABLE = 2,   /* inner */
    CK_TYPE = 3,       /* exact type */
    CK_AWARE = 4,      /* utc: exact datetime with an offset */
    CK_ENUM = 5,       /* cls, values dict: member kept, member value converted */
    CK_ALL = 6,        /* check, check */
    CK_ISINSTANCE = 7, /* cls */
};

typedef struct {
    int code;
    int dst;
    long a, b;    /* the op's register (or index / side) arguments, decoded once */
    long *list;   /* CONCAT, BUILD: the registers of the tuple argument, decoded once */
    PyObject *memo_in, *memo_out; /* STRIP: the last text it had to cut, and the cut (owned) */
    PyObject *op; /* the op tuple (borrowed from the program tuple) */
} Op;

/* What a register's Decimal is known to be, when an op made it from canonical text
 * ("-?digits(.digits)?" with `scale` decimals): then quantizing it to its own scale is itself. */
typedef struct {
    char known;
    char nonzero;
    char negative;
    int scale;
    int int_digits; /* significant digits before the point */
    PyObject *text; /* INTDIGITS: the digits it read, when they are str(int) (borrowed, for the row) */
} Meta;

typedef struct {
    PyObject_HEAD
    PyObject *ops;    /* tuple of op tuples */
    PyObject *result; /* register index of the result */
    Op *code;
    Py_ssize_t n;
    Py_ssize_t nregs;
    Py_ssize_t result_reg;
    Py_ssize_t rows;     /* rows read through run() (for tests and the benchmark) */
    Py_ssize_t given_up; /* of those, rows handed to the fallback */
} Program;

/* module state (single phase init: one interpreter) */
static PyObject *s_strip;         /* "strip" */
static PyObject *s_quantize;      /* "quantize" */
static PyObject *s_is_finite;     /* "is_finite" */
static PyObject *s_adjusted;      /* "adjusted" */
static PyObject *s_utcoffset;     /* "utcoffset" */
static PyObject *s_decimal_type;  /* decimal.Decimal */
static PyObject *s_getcontext;    /* decimal.getcontext */
static PyObject *s_zero;          /* int 0 */

#define ARG(o, i) PyTuple_GET_ITEM((o), (i))

static long
arg_long(PyObject *op, Py_ssize_t i)
{
    return PyLong_AsLong(ARG(op, i));
}

/* ------------------------------------------------------------------------------------------ */
/* Instances are filled as pydantic-core fills them (canonical/builder.py): __dict__, then the
 * fields set, no extra, no private.  The slots are pydantic's own member descriptors. */
typedef struct {
    int ready;
    PyObject *base; /* pydantic.BaseModel: every class a program builds derives from it */
    Py_ssize_t fields_set, extra, private; /* offsets of pydantic's object slots */
} Slots;

static Slots slots;

/* The instance as object.__new__ + the four slot setters make it (canonical/builder.py), with
 * the slots written at the offsets their member descriptors name (checked in set_slots). */
static PyObject *
new_instance(PyObject *cls, PyObject *dict, PyObject *fields_set)
{
    PyTypeObject *tp = (PyTypeObject *)cls;
    PyObject *o = tp->tp_alloc(tp, 0);
    if (o == NULL)
        return NULL;
    if (PyObject_GenericSetDict(o, dict, NULL) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    char *base = (char *)o;
    Py_XSETREF(*(PyObject **)(base + slots.fields_set), Py_NewRef(fields_set));
    Py_XSETREF(*(PyObject **)(base + slots.extra), Py_NewRef(Py_None));
    Py_XSETREF(*(PyObject **)(base + slots.private), Py_NewRef(Py_None));
    return o;
}

static PyObject *
strip_text(PyObject *s, long side)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), i = 0, j = n;
    if (PyUnicode_IS_ASCII(s)) {
        const Py_UCS1 *p = PyUnicode_1BYTE_DATA(s);
        if (side != 1)
            while (i < j && Py_UNICODE_ISSPACE(p[i]))
                i++;
        if (side != 2)
            while (j > i && Py_UNICODE_ISSPACE(p[j - 1]))
                j--;
        if (i == 0 && j == n)
            return Py_NewRef(s);
        return PyUnicode_Substring(s, i, j);
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (side != 1)
        while (i < j && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
    if (side != 2)
        while (j > i && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, j - 1)))
            j--;
    if (i == 0 && j == n)
        return Py_NewRef(s);
    return PyUnicode_Substring(s, i, j);
}

/* The same text as a memo's input (exact str, same characters): the same answer as then. */
static inline int
same_text(PyObject *memo, PyObject *v)
{
    return memo != NULL && PyUnicode_GET_LENGTH(memo) == PyUnicode_GET_LENGTH(v) &&
           PyUnicode_KIND(memo) == PyUnicode_KIND(v) &&
           memcmp(PyUnicode_DATA(memo), PyUnicode_DATA(v), PyUnicode_GET_LENGTH(v) * PyUnicode_KIND(v)) == 0;
}

static inline void
remember(Op *c, PyObject *in, PyObject *out)
{
    Py_XSETREF(c->memo_in, Py_NewRef(in));
    Py_XSETREF(c->memo_out, Py_NewRef(out));
}

/* ---- Exact Decimals without parsing text twice ------------------------------------------
 * Decimal(text) costs a call through the type, argument parsing, a copy of the text and
 * libmpdec's string conversion: about half of what building a row's objects costs beyond the
 * fetch.  For the canonical texts op_decimal already read digit by digit, the Decimal is filled in
 * directly: CPython's _decimal keeps an mpd_t inside each object, a layout it does not publish, so
 * it is mirrored here and proven at import against Decimals made by Decimal(text) (zeros, signs,
 * places, 19 digits, hash, str, as_tuple); where any check differs (another CPython, a 32-bit
 * libmpdec, a Decimal the collector tracks) the text path runs, with the same results. */
typedef struct {
    uint8_t flags;
    Py_ssize_t exp, digits, len, alloc;
    uint64_t *data;
} MpdMirror;

typedef struct {
    PyObject_HEAD
    Py_hash_t hash;
    MpdMirror dec;
    uint64_t data[4];
} DecMirror;

enum { MPD_NEG_ = 1, MPD_STATIC_ = 16, MPD_STATIC_DATA_ = 32 };
static int s_fast_decimal; /* 1 once the import-time proof passed */

static const uint64_t POW10[20] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
                                   100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
                                   1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
                                   1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
                                   1000000000000000000ULL, 10000000000000000000ULL};

/* Decimal of text "-?digits(.digits)?" (ASCII, as canonical_decimal accepted it) with `pad` more zero
 * places (a point first where it has none: the padded text op_decimal would hand to Decimal),
 * a new reference; NULL without an exception where the coefficient needs more than 19 digits. */
static PyObject *
decimal_of_text(PyObject *text, int pad)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0, places = 0;
    const Py_UCS1 *p = PyUnicode_1BYTE_DATA(text);
    int negative = n > 0 && p[0] == '-', digits = 0, seen_point = 0;
    uint64_t coeff = 0;
    for (i = negative; i < n; i++) {
        if (p[i] == '.') {
            seen_point = 1;
            continue;
        }
        places += seen_point;
        if (coeff == 0 && p[i] == '0')
            continue; /* leading zeros: no digit of the coefficient */
        if (++digits > 19)
            return NULL;
        coeff = coeff * 10 + (uint64_t)(p[i] - '0');
    }
    if (pad < 0 || digits + pad > 19)
        return NULL;
    if (coeff != 0)
        coeff *= POW10[pad];
    DecMirror *d = (DecMirror *)_PyObject_New((PyTypeObject *)s_decimal_type);
    if (d == NULL)
        return NULL;
    int count = 1;
    while (count < 20 && coeff >= POW10[count])
        count++;
    d->hash = -1;
    d->dec.flags = (uint8_t)(MPD_STATIC_ | MPD_STATIC_DATA_ | (negative ? MPD_NEG_ : 0));
    d->dec.exp = -(places + pad);
    d->dec.digits = count;
    d->dec.len = 1;
    d->dec.alloc = 4;
    d->dec.data = d->data;
    d->data[0] = coeff;
    return (PyObject *)d;
}

/* The import-time proof: for each text, the filled-in Decimal and Decimal(text) agree. */
static int
prove_fast_decimal(void)
{
    PyTypeObject *t = (PyTypeObject *)s_decimal_type;
    if (!PyType_Check(s_decimal_type) || t->tp_basicsize != (Py_ssize_t)sizeof(DecMirror) || t->tp_itemsize != 0 ||
        PyType_HasFeature(t, Py_TPFLAGS_HAVE_GC) || sizeof(size_t) != 8)
        return 0;
    static const char *texts[] = {"0", "-0", "0.00", "-0.00", "00012.5", "1", "-1", "123.45", "-123.45",
                                  "0.001", "-0.10", "9999999999999999999", "-999999999999999999.9",
                                  "1000000000000000000", "0.0000000000000000001", "5419.3", NULL};
    static const int pads[] = {0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    s_fast_decimal = 1;
    for (int k = 0; texts[k] != NULL; k++) {
        PyObject *text = PyUnicode_FromString(texts[k]);
        char buf[64];
        snprintf(buf, sizeof buf, "%s%s%.*s", texts[k], pads[k] && !strchr(texts[k], '.') ? "." : "", pads[k], "000");
        PyObject *padded = text ? PyUnicode_FromString(buf) : NULL;
        PyObject *want = padded ? PyObject_CallOneArg(s_decimal_type, padded) : NULL;
        PyObject *got = want ? decimal_of_text(text, pads[k]) : NULL;
        int same = 0;
        if (got != NULL) {
            PyObject *a = PyObject_Str(got), *b = PyObject_Str(want);
            PyObject *ta = PyObject_CallMethod(got, "as_tuple", NULL), *tb = PyObject_CallMethod(want, "as_tuple", NULL);
            same = a && b && ta && tb && PyObject_RichCompareBool(a, b, Py_EQ) == 1 &&
                   PyObject_RichCompareBool(ta, tb, Py_EQ) == 1 && PyObject_RichCompareBool(got, want, Py_EQ) == 1 &&
                   PyObject_Hash(got) == PyObject_Hash(want) && PyObject_Hash(got) != -1 &&
                   ((DecMirror *)want)->dec.len == 1 && ((DecMirror *)want)->dec.alloc == 4;
            Py_XDECREF(a);
            Py_XDECREF(b);
            Py_XDECREF(ta);
            Py_XDECREF(tb);
        }
        Py_XDECREF(text);
        Py_XDECREF(padded);
        Py_XDECREF(want);
        Py_XDECREF(got);
        if (PyErr_Occurred())
            PyErr_Clear();
        if (!same) {
            s_fast_decimal = 0;
            return 0;
        }
    }
    /* and one more than 19 digits is left to the text path */
    PyObject *long_text = PyUnicode_FromString("12345678901234567890");
    PyObject *none = long_text ? decimal_of_text(long_text, 0) : NULL;
    Py_XDECREF(long_text);
    if (none != NULL || PyErr_Occurred()) {
        Py_XDECREF(none);
        PyErr_Clear();
        s_fast_decimal = 0;
    }
    return s_fast_decimal;
}

static int canonical_decimal(PyObject *s, int scale, Py_ssize_t prec, Meta *m, int *pad, int *point);

static PyObject *
exact_decimal(PyObject *module, PyObject *args)
{
    PyObject *text;
    int pad = 0;
    if (!PyArg_ParseTuple(args, "U|i", &text, &pad))
        return NULL;
    Meta m;
    int ignored_pad, ignored_point;
    /* the texts op_decimal hands over: those canonical_decimal accepts (any places, any length) */
    if (!s_fast_decimal || !canonical_decimal(text, 1000, PY_SSIZE_T_MAX - 1000, &m, &ignored_pad, &ignored_point))
        Py_RETURN_NONE;
    PyObject *d = decimal_of_text(text, pad);
    if (d == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return d;
}

/* s is "-?[0-9]+(.[0-9]{0,scale})?" (at most scale decimals; SQLite gives 5419.3 for 5419.30) with
 * at most prec digits once padded to scale decimals: fill *m, set *pad to the zeros (and *point to
 * whether a "." is needed first) that make it the text of Decimal(s).quantize(10**-scale), return 1;
 * else 0. */
static int
canonical_decimal(PyObject *s, int scale, Py_ssize_t prec, Meta *m, int *pad, int *point)
{
    if (!PyUnicode_IS_ASCII(s))
        return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), i = 0;
    const Py_UCS1 *p = PyUnicode_1BYTE_DATA(s);
    if (i < n && p[i] == '-')
        i++;
    Py_ssize_t start = i, lead = -1;
    int nonzero = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        if (p[i] != '0' && lead < 0)
            lead = i;
        i++;
    }
    Py_ssize_t int_len = i - start;
    if (int_len == 0)
        return 0;
    nonzero = lead >= 0;
    int int_digits = lead >= 0 ? (int)(i - lead) : 0;
    Py_ssize_t frac = 0;
    *point = 1;
    if (i < n && p[i] == '.') {
        if (scale == 0)
            return 0;
        i++;
        *point = 0;
        Py_ssize_t f = i;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            if (p[i] != '0')
                nonzero = 1;
            i++;
        }
        frac = i - f;
        if (frac == 0 || frac > scale)
            return 0;
    }
    if (i != n || int_len + scale > prec)
        return 0;
    *pad = (int)(scale - frac);
    if (scale == 0)
        *point = 0;
    m->known = 1;
    m->nonzero = (char)nonzero;
    m->negative = (char)(nonzero && p[0] == '-');
    m->scale = scale;
    m->int_digits = int_digits;
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Every op: 1 = done, 0 = give up on the row (no exception set), -1 = error (exception set:
 * also a give-up, the exception is cleared by the caller). */

static int
is_ascii_digits(PyObject *s)
{
    if (!PyUnicode_IS_ASCII(s))
        return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n == 0)
        return 0;
    const Py_UCS1 *p = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

static int
check_value(PyObject *check, PyObject **v)
{
    long kind = PyLong_AsLong(ARG(check, 0));
    PyObject *x = *v;
    switch (kind) {
    case CK_STR: {
        if (!PyUnicode_CheckExact(x))
            return 0;
        Py_ssize_t n = PyUnicode_GET_LENGTH(x);
        PyObject *lo = ARG(check, 1), *hi = ARG(check, 2);
        if (lo != Py_None && n < PyLong_AsSsize_t(lo))
            return 0;
        if (hi != Py_None && n > PyLong_AsSsize_t(hi))
            return 0;
        PyObject *passed = ARG(check, 3), *test = ARG(check, 4);
        if (test == Py_None)
            return 1;
        int hit = PySet_Contains(passed, x);
        if (hit != 0)
            return hit;
        PyObject *r = PyObject_CallOneArg(test, x);
        if (r == NULL)
            return -1;
        int ok = PyObject_IsTrue(r);
        Py_DECREF(r);
        return ok;
    }
    case CK_NULLABLE:
        if (x == Py_None)
            return 1;
        return check_value(ARG(check, 1), v);
    case CK_TYPE:
        return (PyObject *)Py_TYPE(x) == ARG(check, 1);
    case CK_AWARE: {
        if (!PyDateTime_CheckExact(x))
            return 0;
        PyObject *tz = PyDateTime_DATE_GET_TZINFO(x);
        if (tz == ARG(check, 1))
            return 1;
        if (tz == Py_None)
            return 0;
        PyObject *off = PyObject_CallMethodNoArgs(x, s_utcoffset);
        if (off == NULL)
            return -1;
        int ok = off != Py_None;
        Py_DECREF(off);
        return ok;
    }
    case CK_ENUM: {
        if ((PyObject *)Py_TYPE(x) == ARG(check, 1))
            return 1;
        if (!PyUnicode_CheckExact(x))
            return 0;
        PyObject *m = PyDict_GetItemWithError(ARG(check, 2), x);
        if (m == NULL)
            return PyErr_Occurred() ? -1 : 0;
        Py_INCREF(m);
        Py_SETREF(*v, m);
        return 1;
    }
    case CK_ALL: {
        int r = check_value(ARG(check, 1), v);
        if (r != 1)
            return r;
        return check_value(ARG(check, 2), v);
    }
    case CK_ISINSTANCE:
        return PyObject_IsInstance(x, ARG(check, 1));
    }
    PyErr_Format(PyExc_ValueError, "row program: unknown check %ld", kind);
    return -1;
}

/* Money.of's fast path (canonical/money.py), else Money.of itself. */
static int
op_money(Op *c, PyObject **regs, Meta *meta, PyObject **out)
{
    PyObject *op = c->op;
    PyObject *amount = regs[c->a];
    if (amount == Py_None) {
        *out = Py_NewRef(Py_None);
        return 1;
    }
    PyObject *cur;
    if (c->b >= 0) {
        cur = regs[c->b];
        cur = PyUnicode_CheckExact(cur) ? strip_text(cur, 0) : Py_NewRef(cur);
        if (cur == NULL)
            return -1;
    }
    else
        cur = Py_NewRef(ARG(op, 4));
    PyObject *of = ARG(op, 5), *quantum_of = ARG(op, 6), *money = ARG(op, 8), *keys = ARG(op, 9);
    long max_digits = arg_long(op, 7);
    PyObject *quantum = NULL, *q = NULL, *r = NULL;
    int fast = 0;
    if (PyUnicode_CheckExact(cur) && (PyObject *)Py_TYPE(amount) == s_decimal_type) {
        Meta *m = &meta[c->a];
        if (m->known && m->nonzero && m->int_digits <= max_digits) {
            /* canonical text of `scale` places: quantizing to a quantum of as many places is the
             * same number (Money.of's quantize, == and adjusted() hold); other places: below */
            PyObject *units = PyDict_GetItemWithError(ARG(op, 10), cur);
            if (units == NULL && PyErr_Occurred())
                goto error;
            if (units != NULL && PyLong_CheckExact(units) && PyLong_AsLong(units) == m->scale) {
                q = Py_NewRef(amount);
                fast = 1;
            }
        }
        if (!fast) {
            quantum = PyDict_GetItemWithError(quantum_of, cur);
            if (quantum == NULL && PyErr_Occurred())
                goto error;
            Py_XINCREF(quantum);
        }
    }
    if (!fast && quantum != NULL) {
        r = PyObject_CallMethodNoArgs(amount, s_is_finite);
        if (r == NULL)
            goto error;
        int finite = PyObject_IsTrue(r);
        Py_CLEAR(r);
        if (finite) {
            q = PyObject_CallMethodOneArg(amount, s_quantize, quantum);
            if (q == NULL)
                goto error; /* InvalidOperation: Money.of reports it */
            int same = PyObject_RichCompareBool(q, amount, Py_EQ);
            if (same < 0)
                goto error;
            int nonzero = same ? PyObject_IsTrue(q) : 0;
            if (nonzero < 0)
                goto error;
            if (nonzero) {
                r = PyObject_CallMethodNoArgs(q, s_adjusted);
                if (r == NULL)
                    goto error;
                long adj = PyLong_AsLong(r);
                Py_CLEAR(r);
                if (adj == -1 && PyErr_Occurred())
                    goto error;
                fast = adj < max_digits;
            }
        }
    }
    if (fast) {
        PyObject *d = _PyDict_NewPresized(2);
        if (d == NULL)
            goto error;
        if (PyDict_SetItem(d, ARG(keys, 0), q) < 0 || PyDict_SetItem(d, ARG(keys, 1), cur) < 0) {
            Py_DECREF(d);
            goto error;
        }
        PyObject *fs = PySet_New(keys);
        if (fs == NULL) {
            Py_DECREF(d);
            goto error;
        }
        *out = new_instance(money, d, fs);
        Py_DECREF(d);
        Py_DECREF(fs);
        Py_DECREF(q);
        Py_DECREF(cur);
        Py_XDECREF(quantum);
        return *out == NULL ? -1 : 1;
    }
    Py_XDECREF(q);
    Py_XDECREF(quantum);
    *out = PyObject_CallFunctionObjArgs(of, amount, cur, NULL);
    Py_DECREF(cur);
    return *out == NULL ? -1 : 1;
error:
    Py_XDECREF(q);
    Py_XDECREF(quantum);
    Py_DECREF(cur);
    return -1;
}

static int datetime_of(PyObject *d, PyObject *raw, PyObject *tz, PyObject **out);

static int
op_datetime(Op *c, PyObject **regs, PyObject **out)
{
    PyObject *op = c->op;
    PyObject *v = regs[c->a];
    if (v == Py_None) {
        *out = Py_NewRef(Py_None);
        return 1;
    }
    int text = PyUnicode_CheckExact(v);
    PyObject *d;
    if (text && same_text(c->memo_in, v))
        d = Py_NewRef(c->memo_out); /* the row before's date */
    else {
        d = PyDict_GetItemWithError(ARG(op, 4), v);
        if (d != NULL)
            Py_INCREF(d);
        else if (PyErr_Occurred())
            return -1;
        else {
            d = PyObject_CallOneArg(ARG(op, 6), v); /* the parser (it caches what it parses) */
            if (d == NULL)
                return -1;
        }
        if (text)
            remember(c, v, d);
    }
    int r = datetime_of(d, regs[c->b], ARG(op, 5), out);
    Py_DECREF(d);
    return r;
}

/* of_values' fast case: d a date (or None), raw HHMMSS digits (text or int). */
static int
datetime_of(PyObject *d, PyObject *raw, PyObject *tz, PyObject **out)
{
    if (d == Py_None) {
        *out = Py_NewRef(Py_None);
        return 1;
    }
    if (!PyDate_CheckExact(d))
        return 0;
    long t;
    if (PyUnicode_CheckExact(raw)) {
        if (PyUnicode_GET_LENGTH(raw) > 6 || !is_ascii_digits(raw))
            return 0;
        t = 0;
        const Py_UCS1 *p = PyUnicode_1BYTE_DATA(raw);
        for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(raw); i++)
            t = t * 10 + (p[i] - '0');
    }
    else if (PyLong_CheckExact(raw)) {
        int overflow;
        t = PyLong_AsLongAndOverflow(raw, &overflow);
        if (overflow)
            return 0;
        if (t == -1 && PyErr_Occurred())
            return -1;
    }
    else
        return 0;
    if (t < 0 || t >= 240000)
        return 0;
    long hh = t / 10000, mm = (t / 100) % 100, ss = t % 100;
    if (mm >= 60 || ss >= 60)
        return 0;
    *out = PyDateTimeAPI->DateTime_FromDateAndTime(
        PyDateTime_GET_YEAR(d), PyDateTime_GET_MONTH(d), PyDateTime_GET_DAY(d), (int)hh, (int)mm, (int)ss, 0,
        tz, PyDateTimeAPI->DateTimeType);
    return *out == NULL ? -1 : 1;
}

static int
op_decimal(Py_ssize_t prec, Op *c, PyObject **regs, Meta *meta, PyObject **out)
{
    PyObject *op = c->op;
    PyObject *v = regs[c->a];
    meta[c->dst].known = 0;
    if (v == Py_None) {
        *out = Py_NewRef(Py_None);
        return 1;
    }
    PyObject *d;
    int pad = 0, point = 0;
    if (PyUnicode_CheckExact(v) && ARG(op, 3) == s_decimal_type && c->b >= 0 &&
        canonical_decimal(v, (int)c->b, prec, &meta[c->dst], &pad, &point)) {
        /* plain digits with at most the scale's places: Decimal of the text padded to those places
         * is Decimal(text).quantize(quantum), the same coefficient and exponent */
        if (s_fast_decimal) {
            *out = decimal_of_text(v, pad);
            if (*out != NULL)
                return 1;
            if (PyErr_Occurred())
                return -1;
        }
        PyObject *text = v;
        if (pad > 0 || point) {
            Py_ssize_t n = PyUnicode_GET_LENGTH(v);
            text = PyUnicode_New(n + point + pad, 127);
            if (text == NULL)
                return -1;
            Py_UCS1 *t = PyUnicode_1BYTE_DATA(text);
            memcpy(t, PyUnicode_1BYTE_DATA(v), (size_t)n);
            if (point)
                t[n++] = '.';
            memset(t + n, '0', (size_t)pad);
        }
        else
            Py_INCREF(text);
        *out = PyObject_CallOneArg(s_decimal_type, text);
        Py_DECREF(text);
        return *out == NULL ? -1 : 1;
    }
    if (PyUnicode_CheckExact(v)) {
        d = PyObject_CallOneArg(ARG(op, 3), v);
        if (d == NULL)
            return -1;
    }
    else if ((PyObject *)Py_TYPE(v) == s_decimal_type && ARG(op, 3) == s_decimal_type)
        d = Py_NewRef(v); /* psqlODBC's DECIMAL: the closure quantizes it alike */
    else
        return 0;
    PyObject *q = PyObject_CallMethodOneArg(d, s_quantize, ARG(op, 4));
    if (q == NULL) {
        Py_DECREF(d);
        return -1;
    }
    int same = PyObject_RichCompareBool(q, d, Py_EQ);
    Py_DECREF(d);
    if (same != 1) {
        Py_DECREF(q);
        return same;
    }
    *out = q;
    return 1;
}

static int
op_sign(Op *c, PyObject **regs, Meta *meta, PyObject **out)
{
    PyObject *op = c->op;
    PyObject *v = regs[c->a];
    PyObject *ind = regs[c->b];
    meta[c->dst].known = 0;
    if ((PyObject *)Py_TYPE(v) == s_decimal_type && PyUnicode_CheckExact(ind)) {
        /* v < 0, read off the text it was made from where an op knows it */
        int neg = meta[c->a].known ? meta[c->a].negative : PyObject_RichCompareBool(v, s_zero, Py_LT);
        if (neg != 0)
            return neg < 0 ? -1 : 0;
        int hit = PySet_Contains(ARG(op, 4), ind);
        if (hit < 0)
            return -1;
        if (hit)
            *out = PyNumber_Negative(v);
        else {
            hit = PySet_Contains(ARG(op, 5), ind);
            if (hit < 0)
                return -1;
            if (!hit)
                return 0;
            *out = Py_NewRef(v);
        }
        if (*out == NULL)
            return -1;
        meta[c->dst] = meta[c->a]; /* negation keeps places and digits */
        return 1;
    }
    if (v == Py_None) {
        *out = Py_NewRef(Py_None);
        return 1;
    }
    return 0;
}

static int
op_build(Op *c, PyObject **regs, PyObject **out, unsigned long mask)
{
    PyObject *op = c->op;
    PyObject *model = ARG(op, 2), *keys = ARG(op, 3), *table = ARG(op, 5);
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    PyObject *d = _PyDict_NewPresized(n);
    if (d == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyDict_SetItem(d, PyTuple_GET_ITEM(keys, i), regs[c->list[i]]) < 0) {
            Py_DECREF(d);
            return -1;
        }
    }
    if ((Py_ssize_t)mask >= PyTuple_GET_SIZE(table)) {
        Py_DECREF(d);
        PyErr_SetString(PyExc_ValueError, "row program: fields-set mask out of range");
        return -1;
    }
    PyObject *fs = PySet_New(PyTuple_GET_ITEM(table, mask));
    if (fs == NULL) {
        Py_DECREF(d);
        return -1;
    }
    PyObject *o = new_instance(model, d, fs);
    Py_DECREF(d);
    Py_DECREF(fs);
    if (o == NULL)
        return -1;
    *out = o;
    return 1;
}

/* One op on one row's registers: 1 done, 0 give the row up, -1 error (exception set). */
static inline int
exec_op(Py_ssize_t prec, Op *c, PyObject *row, PyObject **regs, Meta *meta, unsigned long *mask)
{
    int status = 1;
    PyObject *op = c->op;
    PyObject *out = NULL;
    switch (c->code) {
    case OP_LOAD:
        out = PySequence_GetItem(row, c->a);
        status = out == NULL ? -1 : 1;
        break;
    case OP_CONST:
        out = Py_NewRef(ARG(op, 2));
        break;
    case OP_STRIP: {
        PyObject *v = regs[c->a];
        if (PyUnicode_CheckExact(v)) {
            /* the same padded text as the row before (a key on every row of a page): the same cut */
            if (same_text(c->memo_in, v)) {
                out = Py_NewRef(c->memo_out);
                break;
            }
            out = strip_text(v, c->b);
            status = out == NULL ? -1 : 1;
            if (out != NULL && out != v)
                remember(c, v, out);
        }
        else if (v == Py_None)
            out = Py_NewRef(Py_None);
        else
            status = 0;
        break;
    }
    case OP_NULLIF: {
        PyObject *v = regs[c->a];
        int hit = PySet_Contains(ARG(op, 3), v);
        if (hit < 0)
            status = -1;
        else
            out = Py_NewRef(hit ? Py_None : v);
        break;
    }
    case OP_INTDIGITS: {
        PyObject *v = regs[c->a];
        meta[c->dst].text = NULL;
        if (PyLong_CheckExact(v) || v == Py_None)
            out = Py_NewRef(v);
        else if (PyUnicode_CheckExact(v) && is_ascii_digits(v)) {
            out = PyLong_FromUnicodeObject(v, 10);
            status = out == NULL ? -1 : 1;
            if (PyUnicode_GET_LENGTH(v) == 1 || PyUnicode_1BYTE_DATA(v)[0] != '0')
                meta[c->dst].text = v; /* str(int(v)) == v: a concat may take v as it is */
        }
        else
            status = 0;
        break;
    }
    case OP_CONCAT: {
        /* sep.join(str(part)) for exact str / int parts (an int read from its digits: those digits) */
        Py_ssize_t n = PyTuple_GET_SIZE(ARG(op, 3));
        PyObject *sep = ARG(op, 2);
        PyObject *parts[16];
        char owned[16];
        if (n > 16) {
            status = 0;
            break;
        }
        Py_ssize_t len = n > 1 ? PyUnicode_GET_LENGTH(sep) * (n - 1) : 0;
        Py_UCS4 maxchar = n > 1 ? PyUnicode_MAX_CHAR_VALUE(sep) : 127;
        Py_ssize_t got = 0;
        for (Py_ssize_t i = 0; i < n && status == 1; i++) {
            PyObject *v = regs[c->list[i]];
            owned[i] = 0;
            if (PyUnicode_CheckExact(v))
                parts[i] = v;
            else if (PyLong_CheckExact(v)) {
                if (meta[c->list[i]].text != NULL)
                    parts[i] = meta[c->list[i]].text;
                else {
                    parts[i] = PyObject_Str(v);
                    owned[i] = 1;
                    if (parts[i] == NULL) {
                        status = -1;
                        break;
                    }
                }
            }
            else {
                status = 0;
                break;
            }
            got = i + 1;
            len += PyUnicode_GET_LENGTH(parts[i]);
            if (PyUnicode_MAX_CHAR_VALUE(parts[i]) > maxchar)
                maxchar = PyUnicode_MAX_CHAR_VALUE(parts[i]);
        }
        if (status == 1) {
            out = PyUnicode_New(len, maxchar);
            Py_ssize_t pos = 0;
            for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
                if (i > 0) {
                    if (PyUnicode_CopyCharacters(out, pos, sep, 0, PyUnicode_GET_LENGTH(sep)) < 0)
                        Py_CLEAR(out);
                    pos += PyUnicode_GET_LENGTH(sep);
                }
                if (out != NULL && PyUnicode_CopyCharacters(out, pos, parts[i], 0, PyUnicode_GET_LENGTH(parts[i])) < 0)
                    Py_CLEAR(out);
                pos += PyUnicode_GET_LENGTH(parts[i]);
            }
            status = out == NULL ? -1 : 1;
        }
        for (Py_ssize_t i = 0; i < got; i++)
            if (owned[i])
                Py_DECREF(parts[i]);
        break;
    }
    case OP_LOOKUP: {
        PyObject *v = regs[c->a];
        if (v == Py_None) {
            out = Py_NewRef(Py_None);
            break;
        }
        /* consecutive rows often carry the same code or date: the same entry as the row before */
        int text = PyUnicode_CheckExact(v);
        if (text && same_text(c->memo_in, v)) {
            out = Py_NewRef(c->memo_out);
            break;
        }
        PyObject *hit = PyDict_GetItemWithError(ARG(op, 3), v);
        if (hit != NULL)
            out = Py_NewRef(hit);
        else if (PyErr_Occurred())
            status = -1;
        else if (ARG(op, 4) == Py_None)
            status = 0;
        else {
            out = PyObject_CallOneArg(ARG(op, 4), v);
            status = out == NULL ? -1 : 1;
        }
        if (status == 1 && text)
            remember(c, v, out);
        break;
    }
    case OP_DATETIME:
        status = op_datetime(c, regs, &out);
        break;
    case OP_DECIMAL:
        status = op_decimal(prec, c, regs, meta, &out);
        break;
    case OP_SIGN:
        status = op_sign(c, regs, meta, &out);
        break;
    case OP_MONEY:
        status = op_money(c, regs, meta, &out);
        break;
    case OP_REQUIRE:
        if (regs[c->a] == Py_None)
            status = 0;
        return status;
    case OP_DEFAULT:
        if (regs[c->a] == Py_None)
            Py_SETREF(regs[c->a], Py_NewRef(ARG(op, 3)));
        return status;
    case OP_CHECK: {
        unsigned long bit = (unsigned long)c->b;
        if (bit && regs[c->a] == Py_None) {
            Py_SETREF(regs[c->a], Py_NewRef(ARG(op, 5)));
            return status;
        }
        status = check_value(ARG(op, 3), &regs[c->a]);
        *mask |= bit;
        return status;
    }
    case OP_BUILD:
        status = op_build(c, regs, &out, *mask);
        break;
    default:
        PyErr_Format(PyExc_ValueError, "row program: unknown op %d", c->code);
        status = -1;
    }
    if (status == 1 && out != NULL)
        Py_XSETREF(regs[c->dst], out);
    else
        Py_XDECREF(out);
    return status;
}

/* The value of field `name` of a model instance (borrowed), or NULL (no dict, or no such key). */
static PyObject *
field_of(PyObject *o, PyObject *name)
{
    PyObject *d = PyObject_GenericGetDict(o, NULL);
    if (d == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *v = PyDict_GetItemWithError(d, name);
    Py_DECREF(d); /* the instance keeps it, and v */
    if (v == NULL)
        PyErr_Clear();
    return v;
}

/* canonical.builder.SameValues.holds, for a validator's guard (a, b, attr or None, none_ok): field b
 * is None and none_ok; or fields a and b (their `attr`, where given) are the same object or equal
 * exact strs.  Where it holds the validator is known to return the instance unchanged and raise
 * nothing (canonical.builder.NOOP_WHEN), so its call is skipped; anything else: 0, and it is called. */
static int
guard_holds(PyObject *guard, PyObject *o)
{
    PyObject *a = field_of(o, ARG(guard, 0));
    PyObject *b = field_of(o, ARG(guard, 1));
    PyObject *attr = ARG(guard, 2);
    if (b == Py_None)
        return ARG(guard, 3) == Py_True;
    if (a == NULL || b == NULL || a == Py_None)
        return 0;
    if (attr != Py_None) {
        a = field_of(a, attr);
        b = field_of(b, attr);
        if (a == NULL || b == NULL)
            return 0;
    }
    if (a == b)
        return 1;
    if (!PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b))
        return 0;
    int eq = PyUnicode_Compare(a, b);
    if (eq == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return eq == 0;
}

/* Rows run op by op over a block (each op's code stays hot in the instruction cache, as does the
 * interpreter for the model validators, which run as a last phase): results[r] is row r's object
 * or NULL (given up).  -1 only for MemoryError; any other exception gives its row up. */
#define BLOCK 64

static int
run_block(Program *self, Py_ssize_t prec, PyObject **rows, Py_ssize_t nrows, PyObject **regs, Meta *meta,
          PyObject **results)
{
    unsigned long masks[BLOCK];
    signed char status[BLOCK];
    Py_ssize_t nr = self->nregs;
    int oom = 0;
    /* no reset of meta: a register's one writer op (DECIMAL, SIGN) writes its meta on every row
     * before any reader runs; other registers' meta stay zero from the allocation */
    for (Py_ssize_t r = 0; r < nrows; r++) {
        masks[r] = 0;
        status[r] = 1;
        results[r] = NULL;
    }
    for (Py_ssize_t k = 0; k < self->n && !oom; k++) {
        Op *c = &self->code[k];
        for (Py_ssize_t r = 0; r < nrows; r++) {
            if (status[r] != 1)
                continue;
            int st = exec_op(prec, c, rows[r], regs + r * nr, meta + r * nr, &masks[r]);
            if (st < 0) {
                /* a library raised where the generated function would too: it gives the answer */
                if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
                    oom = 1;
                    break;
                }
                PyErr_Clear();
                st = 0;
            }
            status[r] = (signed char)st;
        }
    }
    PyObject *after = NULL;
    if (!oom && self->n > 0 && self->code[self->n - 1].code == OP_BUILD)
        after = ARG(self->code[self->n - 1].op, 6);
    for (Py_ssize_t r = 0; r < nrows; r++) {
        PyObject **rr = regs + r * nr;
        if (!oom && status[r] == 1 && rr[self->result_reg] != NULL) {
            PyObject *o = rr[self->result_reg];
            rr[self->result_reg] = NULL;
            for (Py_ssize_t i = 0; after != NULL && o != NULL && i < PyTuple_GET_SIZE(after); i++) {
                PyObject *fn = PyTuple_GET_ITEM(after, i);
                if (PyTuple_Check(fn)) {
                    if (guard_holds(ARG(fn, 1), o))
                        continue;
                    fn = ARG(fn, 0);
                }
                PyObject *v = PyObject_CallOneArg(fn, o);
                Py_DECREF(o);
                o = v;
            }
            if (o == NULL) {
                if (PyErr_ExceptionMatches(PyExc_MemoryError))
                    oom = 1;
                else
                    PyErr_Clear(); /* the validator refused: the generated Python reports it */
            }
            results[r] = o;
        }
        for (Py_ssize_t i = 0; i < nr; i++)
            Py_CLEAR(rr[i]);
    }
    if (oom) {
        for (Py_ssize_t r = 0; r < nrows; r++)
            Py_CLEAR(results[r]);
        return -1;
    }
    return 0;
}

/* The calling thread's decimal context precision (Decimal(text) and quantize depend on it), or -1. */
static Py_ssize_t
read_prec(void)
{
    PyObject *ctx = PyObject_CallNoArgs(s_getcontext);
    if (ctx == NULL)
        return -1;
    PyObject *prec = PyObject_GetAttrString(ctx, "prec");
    Py_DECREF(ctx);
    if (prec == NULL)
        return -1;
    Py_ssize_t p = PyLong_AsSsize_t(prec);
    Py_DECREF(prec);
    return p;
}

static PyObject *
Program_run(Program *self, PyObject *args)
{
    PyObject *rows, *fallback;
    if (!PyArg_ParseTuple(args, "OO:run", &rows, &fallback))
        return NULL;
    PyObject *seq = PySequence_Fast(rows, "rows must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_ssize_t prec = read_prec();
    if (prec < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t nr = self->nregs ? self->nregs : 1;
    PyObject *outlist = PyList_New(n);
    PyObject **regs = PyMem_Calloc((size_t)(nr * BLOCK), sizeof(PyObject *));
    Meta *meta = PyMem_Calloc((size_t)(nr * BLOCK), sizeof(Meta));
    PyObject *results[BLOCK];
    if (outlist == NULL || regs == NULL || meta == NULL) {
        Py_XDECREF(outlist);
        PyMem_Free(regs);
        PyMem_Free(meta);
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t nrows = n - start < BLOCK ? n - start : BLOCK;
        if (run_block(self, prec, items + start, nrows, regs, meta, results) < 0)
            goto fail;
        self->rows += nrows;
        for (Py_ssize_t r = 0; r < nrows; r++) {
            PyObject *obj = results[r];
            if (obj == NULL) {
                self->given_up++;
                obj = PyObject_CallOneArg(fallback, items[start + r]);
                if (obj == NULL) {
                    for (Py_ssize_t q = r + 1; q < nrows; q++)
                        Py_XDECREF(results[q]);
                    goto fail;
                }
            }
            PyList_SET_ITEM(outlist, start + r, obj);
        }
    }
    PyMem_Free(regs);
    PyMem_Free(meta);
    Py_DECREF(seq);
    return outlist;
fail:
    PyMem_Free(regs);
    PyMem_Free(meta);
    Py_DECREF(seq);
    Py_DECREF(outlist);
    return NULL;
}

static PyObject *
Program_one(Program *self, PyObject *row)
{
    Py_ssize_t prec = read_prec();
    if (prec < 0)
        return NULL;
    Py_ssize_t nr = self->nregs ? self->nregs : 1;
    PyObject **regs = PyMem_Calloc((size_t)nr, sizeof(PyObject *));
    Meta *meta = PyMem_Calloc((size_t)nr, sizeof(Meta));
    if (regs == NULL || meta == NULL) {
        PyMem_Free(regs);
        PyMem_Free(meta);
        return PyErr_NoMemory();
    }
    PyObject *obj = NULL;
    int status = run_block(self, prec, &row, 1, regs, meta, &obj);
    PyMem_Free(regs);
    PyMem_Free(meta);
    if (status < 0)
        return NULL;
    if (obj == NULL)
        Py_RETURN_NONE; /* gave up (a model instance is never None) */
    return obj;
}

/* A check's shape (kinds and sizes, nested checks too), once at construction: 0 ok, -1 error. */
static int
validate_check(PyObject *check, int depth)
{
    static const Py_ssize_t size[] = {0, 5, 2, 2, 2, 3, 3, 2};
    if (depth > 16 || !PyTuple_Check(check) || PyTuple_GET_SIZE(check) < 1 || !PyLong_Check(ARG(check, 0)))
        goto bad;
    long kind = PyLong_AsLong(ARG(check, 0));
    if (kind < CK_STR || kind > CK_ISINSTANCE || PyTuple_GET_SIZE(check) != size[kind])
        goto bad;
    switch (kind) {
    case CK_STR:
        for (int i = 1; i <= 2; i++)
            if (ARG(check, i) != Py_None && !PyLong_Check(ARG(check, i)))
                goto bad;
        if (ARG(check, 4) != Py_None && (!PyAnySet_Check(ARG(check, 3)) || !PyCallable_Check(ARG(check, 4))))
            goto bad;
        return 0;
    case CK_NULLABLE:
        return validate_check(ARG(check, 1), depth + 1);
    case CK_ENUM:
        if (!PyDict_Check(ARG(check, 2)))
            goto bad;
        return 0;
    case CK_ALL:
        return validate_check(ARG(check, 1), depth + 1) < 0 ? -1 : validate_check(ARG(check, 2), depth + 1);
    default:
        return 0;
    }
bad:
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "Program: a malformed check");
    return -1;
}

static void
free_code(Op *code, Py_ssize_t n)
{
    if (code == NULL)
        return;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyMem_Free(code[k].list);
        Py_CLEAR(code[k].memo_in);
        Py_CLEAR(code[k].memo_out);
    }
    PyMem_Free(code);
}

static int
Program_init(Program *self, PyObject *args, PyObject *kwds)
{
    PyObject *ops;
    Py_ssize_t nregs, result;
    static char *kwlist[] = {"ops", "nregs", "result", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!nn:Program", kwlist, &PyTuple_Type, &ops, &nregs, &result))
        return -1;
    if (!slots.ready) {
        PyErr_SetString(PyExc_RuntimeError, "row programs: set_slots() has not been called");
        return -1;
    }
    if (self->code != NULL) {
        PyErr_SetString(PyExc_TypeError, "Program is initialised once");
        return -1;
    }
    if (nregs < 0 || result < 0 || result >= nregs) {
        PyErr_SetString(PyExc_ValueError, "Program: bad register count or result register");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(ops);
    Op *code = PyMem_Calloc(n ? n : 1, sizeof(Op));
    if (code == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    static const Py_ssize_t arity[] = {3, 3, 4, 4, 3, 4, 5, 7, 6, 6, 11, 3, 4, 6, 7};

    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *op = PyTuple_GET_ITEM(ops, k);
        if (!PyTuple_Check(op) || PyTuple_GET_SIZE(op) < 2) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd is not a tuple (opcode, dst, ...)", k);
            goto fail;
        }
        long oc = PyLong_AsLong(ARG(op, 0));
        long dst = PyLong_AsLong(ARG(op, 1));
        if (PyErr_Occurred())
            goto fail;
        if (oc < 0 || oc > OP_BUILD || PyTuple_GET_SIZE(op) != arity[oc]) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd: bad opcode %ld or argument count", k, oc);
            goto fail;
        }
        if (dst < 0 || dst >= nregs) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd writes register %ld of %zd", k, dst, nregs);
            goto fail;
        }
        /* register arguments must be in range: checked here once, not per row */
        /* register arguments by opcode (-1: none) */
        static const signed char regargs[][3] = {
            {-1, -1, -1}, {-1, -1, -1}, {2, -1, -1}, {2, -1, -1}, {2, -1, -1}, {-1, -1, -1}, {2, -1, -1},
            {2, 3, -1},   {2, -1, -1},  {2, 3, -1},  {2, 3, -1},  {2, -1, -1}, {2, -1, -1}, {2, -1, -1},
            {-1, -1, -1}};
        /* the two decoded arguments (a, b) by opcode: tuple positions, -1 none */
        static const signed char decoded[][2] = {
            {2, -1}, {-1, -1}, {2, 3}, {2, -1}, {2, -1}, {-1, -1}, {2, -1}, {2, 3},
            {2, 5},  {2, 3},   {2, 3}, {2, -1}, {2, -1}, {2, 4},   {-1, -1}};
        for (int j = 0; j < 3; j++) {
            int a = regargs[oc][j];
            if (a < 0)
                continue;
            long r = PyLong_AsLong(ARG(op, a));
            if (PyErr_Occurred() || r < (oc == OP_MONEY && a == 3 ? -1 : 0) || r >= nregs) {
                PyErr_Format(PyExc_ValueError, "Program: op %zd reads a bad register", k);
                goto fail;
            }
        }
        PyObject *regtuple = oc == OP_CONCAT ? ARG(op, 3) : oc == OP_BUILD ? ARG(op, 4) : NULL;
        if (regtuple != NULL) {
            if (!PyTuple_Check(regtuple)) {
                PyErr_Format(PyExc_ValueError, "Program: op %zd: registers must be a tuple", k);
                goto fail;
            }
            code[k].list = PyMem_Calloc(PyTuple_GET_SIZE(regtuple) + 1, sizeof(long));
            if (code[k].list == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(regtuple); j++) {
                long r = PyLong_AsLong(PyTuple_GET_ITEM(regtuple, j));
                if (PyErr_Occurred() || r < 0 || r >= nregs) {
                    PyErr_Format(PyExc_ValueError, "Program: op %zd reads a bad register", k);
                    goto fail;
                }
                code[k].list[j] = r;
            }
        }
        if ((oc == OP_BUILD || oc == OP_MONEY) && PyType_Check(ARG(op, oc == OP_BUILD ? 2 : 8))) {
            int sub = PyObject_IsSubclass(ARG(op, oc == OP_BUILD ? 2 : 8), slots.base);
            if (sub < 0)
                goto fail;
            if (!sub) {
                PyErr_Format(PyExc_TypeError, "Program: op %zd builds a class that is not a pydantic model", k);
                goto fail;
            }
        }
        if (oc == OP_BUILD && (k != n - 1 || dst != result)) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd: a build must be the last op and give the result", k);
            goto fail;
        }
        if (oc == OP_BUILD) {
            if (!PyType_Check(ARG(op, 2)) || !PyTuple_Check(ARG(op, 3)) || !PyTuple_Check(ARG(op, 5)) ||
                !PyTuple_Check(ARG(op, 6)) || PyTuple_GET_SIZE(ARG(op, 3)) != PyTuple_GET_SIZE(ARG(op, 4))) {
                PyErr_Format(PyExc_ValueError, "Program: op %zd: bad build arguments", k);
                goto fail;
            }
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(ARG(op, 6)); i++) {
                PyObject *fn = PyTuple_GET_ITEM(ARG(op, 6), i), *g = NULL;
                if (PyTuple_Check(fn)) {
                    g = PyTuple_GET_SIZE(fn) == 2 ? ARG(fn, 1) : NULL;
                    fn = PyTuple_GET_SIZE(fn) == 2 ? ARG(fn, 0) : NULL;
                    if (g == NULL || !PyTuple_Check(g) || PyTuple_GET_SIZE(g) != 4 ||
                        !PyUnicode_CheckExact(ARG(g, 0)) || !PyUnicode_CheckExact(ARG(g, 1)) ||
                        (ARG(g, 2) != Py_None && !PyUnicode_CheckExact(ARG(g, 2))) || !PyBool_Check(ARG(g, 3)))
                        fn = NULL;
                }
                if (fn == NULL || !PyCallable_Check(fn)) {
                    PyErr_Format(PyExc_ValueError, "Program: op %zd: a validator is a callable or "
                                 "(callable, (a, b, attr or None, none_ok))", k);
                    goto fail;
                }
            }
        }
        if (oc == OP_MONEY && (!PyType_Check(ARG(op, 8)) || !PyTuple_Check(ARG(op, 9)) ||
                               PyTuple_GET_SIZE(ARG(op, 9)) != 2 || !PyDict_Check(ARG(op, 6)) ||
                               !PyDict_Check(ARG(op, 10)))) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd: bad money arguments", k);
            goto fail;
        }
        if ((oc == OP_LOOKUP && !PyDict_Check(ARG(op, 3))) || (oc == OP_DATETIME && !PyDict_Check(ARG(op, 4))) ||
            (oc == OP_NULLIF && !PyAnySet_Check(ARG(op, 3))) ||
            (oc == OP_SIGN && (!PyAnySet_Check(ARG(op, 4)) || !PyAnySet_Check(ARG(op, 5)))) ||
            (oc == OP_CONCAT && !PyUnicode_Check(ARG(op, 2))) ||
            (oc == OP_DATETIME && ARG(op, 5) != Py_None && !PyTZInfo_Check(ARG(op, 5))) ||
            (oc == OP_DATETIME && !PyCallable_Check(ARG(op, 6))) ||
            (oc == OP_LOOKUP && ARG(op, 4) != Py_None && !PyCallable_Check(ARG(op, 4)))) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd: bad argument types", k);
            goto fail;
        }
        if (oc == OP_CHECK && validate_check(ARG(op, 3), 0) < 0)
            goto fail;
        if (oc == OP_DECIMAL && (!PyLong_Check(ARG(op, 5)) || PyLong_AsLong(ARG(op, 5)) < -1 ||
                                 PyLong_AsLong(ARG(op, 5)) > 1000)) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd: a decimal scale is -1 (unknown) to 1000", k);
            goto fail;
        }
        if (oc == OP_MONEY && (!PyLong_Check(ARG(op, 7)) || !PyCallable_Check(ARG(op, 5)))) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd: bad money arguments", k);
            goto fail;
        }
        code[k].code = (int)oc;
        code[k].dst = (int)dst;
        code[k].op = op;
        code[k].a = decoded[oc][0] < 0 ? 0 : PyLong_AsLong(ARG(op, decoded[oc][0]));
        code[k].b = decoded[oc][1] < 0 ? 0 : PyLong_AsLong(ARG(op, decoded[oc][1]));
        if (PyErr_Occurred())
            goto fail;
        if (oc == OP_LOAD && code[k].a < 0) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd loads a negative column", k);
            goto fail;
        }
        if (oc == OP_STRIP && (code[k].b < 0 || code[k].b > 2)) {
            PyErr_Format(PyExc_ValueError, "Program: op %zd: strip side must be 0, 1 or 2", k);
            goto fail;
        }
    }
    Py_INCREF(ops);
    self->ops = ops;
    self->code = code;
    self->n = n;
    self->nregs = nregs;
    self->result_reg = result;
    return 0;
fail:
    free_code(code, n);
    return -1;
}

static void
Program_dealloc(Program *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->ops);
    free_code(self->code, self->n);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Program_traverse(Program *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ops);
    return 0;
}

static int
Program_clear(Program *self)
{
    Py_CLEAR(self->ops);
    free_code(self->code, self->n);
    self->code = NULL;
    self->n = 0;
    return 0;
}

static PyObject *
Program_get_given_up(Program *self, void *closure)
{
    return PyLong_FromSsize_t(self->given_up);
}

static PyObject *
Program_get_rows(Program *self, void *closure)
{
    return PyLong_FromSsize_t(self->rows);
}

static PyObject *
Program_get_ops(Program *self, void *closure)
{
    return Py_NewRef(self->ops ? self->ops : Py_None);
}

static PyMethodDef Program_methods[] = {
    {"run", (PyCFunction)Program_run, METH_VARARGS,
     "run(rows, fallback) -> list: each row's object; fallback(row) reads the rows the program gives up on"},
    {"one", (PyCFunction)Program_one, METH_O, "one(row) -> object, or None where the program gives up"},
    {NULL}};

static PyGetSetDef Program_getset[] = {
    {"rows", (getter)Program_get_rows, NULL, "rows read through run() so far", NULL},
    {"given_up", (getter)Program_get_given_up, NULL, "of those, rows handed to the fallback", NULL},
    {"ops", (getter)Program_get_ops, NULL, "the program", NULL},
    {NULL}};

static PyTypeObject ProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mappings.engine._rowprog.Program",
    .tp_basicsize = sizeof(Program),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Program(ops, nregs, result): a mapping's read rules for rows (see mappings/engine/native.py)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Program_init,
    .tp_dealloc = (destructor)Program_dealloc,
    .tp_traverse = (traverseproc)Program_traverse,
    .tp_clear = (inquiry)Program_clear,
    .tp_methods = Program_methods,
    .tp_getset = Program_getset,
};

/* An object slot a member descriptor names (T_OBJECT_EX, writable): its offset, or -1. */
static Py_ssize_t
member_offset(PyObject *descr, const char *what)
{
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "set_slots: %s is not a member descriptor", what);
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "set_slots: %s is not a writable object slot", what);
        return -1;
    }
    return m->offset;
}

static PyObject *
set_slots(PyObject *module, PyObject *args)
{
    PyObject *base, *fields_set, *extra, *private;
    if (!PyArg_ParseTuple(args, "O!OOO:set_slots", &PyType_Type, &base, &fields_set, &extra, &private))
        return NULL;
    Py_ssize_t a = member_offset(fields_set, "__pydantic_fields_set__");
    Py_ssize_t b = a < 0 ? -1 : member_offset(extra, "__pydantic_extra__");
    Py_ssize_t c = b < 0 ? -1 : member_offset(private, "__pydantic_private__");
    if (c < 0)
        return NULL;
    slots.fields_set = a;
    slots.extra = b;
    slots.private = c;
    Py_XSETREF(slots.base, Py_NewRef(base));
    slots.ready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"set_slots", set_slots, METH_VARARGS,
     "set_slots(BaseModel, fields_set, extra, private): pydantic's base and slot member descriptors, once"},
    {"exact_decimal", exact_decimal, METH_VARARGS,
     "exact_decimal(text, pad=0): Decimal of text with pad more zero places (and a point where it has none), "
     "filled in directly as row programs make them; "
     "None where that path does not apply (FAST_DECIMAL false, not -?digits(.digits)?, over 19 digits)"},
    {NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "mappings.engine._rowprog",
                                    "Row programs: a mapping's read rules for database rows, run in C.", -1,
                                    module_methods};

PyMODINIT_FUNC
PyInit__rowprog(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    if (PyType_Ready(&ProgramType) < 0)
        return NULL;
    PyObject *decimal = PyImport_ImportModule("decimal");
    if (decimal == NULL)
        return NULL;
    s_decimal_type = PyObject_GetAttrString(decimal, "Decimal");
    s_getcontext = PyObject_GetAttrString(decimal, "getcontext");
    Py_DECREF(decimal);
    if (s_decimal_type == NULL || s_getcontext == NULL)
        return NULL;
    s_strip = PyUnicode_InternFromString("strip");
    s_quantize = PyUnicode_InternFromString("quantize");
    s_is_finite = PyUnicode_InternFromString("is_finite");
    s_adjusted = PyUnicode_InternFromString("adjusted");
    s_utcoffset = PyUnicode_InternFromString("utcoffset");
    s_zero = PyLong_FromLong(0);
    if (!s_strip || !s_quantize || !s_is_finite || !s_adjusted || !s_utcoffset || !s_zero)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    prove_fast_decimal();
    if (PyModule_AddObjectRef(m, "FAST_DECIMAL", s_fast_decimal ? Py_True : Py_False) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Program", (PyObject *)&ProgramType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
