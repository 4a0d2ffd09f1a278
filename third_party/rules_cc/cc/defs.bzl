"""The native C++ rules under the names @rules_cc//cc:defs.bzl exports.

Bazel 4.2.3 loads this file from its embedded @bazel_tools//tools/cpp package while resolving
the toolchains of every py_binary/py_test; the real rules_cc is an http_archive that cannot be
fetched offline, and Debian's bazel-rules-cc (0.0.4) needs a newer Bazel. This project builds
no C++; these forwarders only let @bazel_tools load.
"""

def cc_binary(**attrs):
    native.cc_binary(**attrs)

def cc_import(**attrs):
    native.cc_import(**attrs)

def cc_library(**attrs):
    native.cc_library(**attrs)

def cc_proto_library(**attrs):
    native.cc_proto_library(**attrs)

def cc_test(**attrs):
    native.cc_test(**attrs)

def cc_toolchain(**attrs):
    native.cc_toolchain(**attrs)

def cc_toolchain_suite(**attrs):
    native.cc_toolchain_suite(**attrs)

def fdo_prefetch_hints(**attrs):
    native.fdo_prefetch_hints(**attrs)

def fdo_profile(**attrs):
    native.fdo_profile(**attrs)

def objc_import(**attrs):
    native.objc_import(**attrs)

def objc_library(**attrs):
    native.objc_library(**attrs)
