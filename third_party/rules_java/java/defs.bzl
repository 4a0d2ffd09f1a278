"""The native Java rules under the names @rules_java//java:defs.bzl exports.

Bazel 4.2.3 loads this file from its embedded @bazel_tools//tools/jdk package (its registered
Java toolchains are parsed while any target's toolchains are resolved); the real rules_java is
an http_archive that cannot be fetched offline. This project builds no Java; these forwarders
only let @bazel_tools load.
"""

def java_binary(**attrs):
    native.java_binary(**attrs)

def java_import(**attrs):
    native.java_import(**attrs)

def java_library(**attrs):
    native.java_library(**attrs)

def java_lite_proto_library(**attrs):
    native.java_lite_proto_library(**attrs)

def java_plugin(**attrs):
    native.java_plugin(**attrs)

def java_proto_library(**attrs):
    native.java_proto_library(**attrs)

def java_runtime(**attrs):
    native.java_runtime(**attrs)

def java_test(**attrs):
    native.java_test(**attrs)

def java_toolchain(**attrs):
    native.java_toolchain(**attrs)
