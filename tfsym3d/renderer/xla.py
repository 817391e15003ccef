"""Compiling small pieces with XLA from graph-mode code.

`fuse(fn)` gives a version of fn that runs as one XLA computation (a
`tf.function(jit_compile=True)`), except when the caller is already being compiled by
XLA, where nesting it would make XLA recompile on every call: there fn is called as is.
"""

import functools

import tensorflow as tf

try:  # private API: whether the graph being built is inside an XLA compilation
    from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
except ImportError:  # pragma: no cover - a later TensorFlow without it
    GraphOrParentsInXlaContext = None


def in_xla_context():
    """True while tracing a function that XLA will compile (jit_compile=True)."""
    if GraphOrParentsInXlaContext is None or tf.executing_eagerly():
        return False
    return bool(GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def fuse(fn):
    """fn compiled with XLA when called outside an XLA compilation (same arguments)."""
    compiled = tf.function(fn, jit_compile=True)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return fn(*args, **kwargs) if in_xla_context() else compiled(*args, **kwargs)

    return call
