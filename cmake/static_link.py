#!/usr/bin/env python3
"""Link launcher that turns chosen shared libraries into static ones.

Set as a target's CXX_LINKER_LAUNCHER (cmake/VouchHelpers.cmake,
vouch_link_static): CMake runs

    static_link.py --static 'grpc++,grpc,absl_*,...' -- c++ ... -o bin ...

and this script runs the link command with every shared library whose name
(libNAME.so[.N]) matches one of the patterns replaced by its static archive
libNAME.a from the same directory. A shared library brings its own
dependencies at run time (its DT_NEEDED entries); an archive does not, so
the NEEDED closure of every replaced library is added too: statically where
it matches a pattern, as the same shared library (-l:SONAME) otherwise. The
archives go last, in one --start-group/--end-group, so their order does not
matter. A matching library without an archive is an error: the build must
not silently produce a dynamic binary when a static one was asked for.
"""
import fnmatch
import os
import re
import subprocess
import sys

# Linked by the compiler driver itself; never named explicitly.
RUNTIME = {"c", "m", "dl", "rt", "pthread", "stdc++", "gcc_s"}
SHARED = re.compile(r"^lib(.+?)\.so(\.[0-9.]+)?$")
LOADER = re.compile(r"^ld-linux[-.\w]*\.so(\.[0-9.]+)?$")


def fail(message):
    sys.stderr.write("static_link.py: %s\n" % message)
    sys.exit(1)


def needed(path):
    """The DT_NEEDED sonames of a shared library."""
    out = subprocess.run(["readelf", "-d", "--wide", path], check=True,
                         capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


class Linker:
    def __init__(self, command, patterns):
        self.command = command
        self.patterns = patterns
        self.archives = []     # static archives, in discovery order
        self.dynamic = []      # -l:SONAME of the closure that stays shared
        self.seen = set()

    def static(self, name):
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)

    def find(self, filename, near=None):
        """Path of filename next to `near`, else where the compiler finds it."""
        if near:
            candidate = os.path.join(os.path.dirname(near), filename)
            if os.path.exists(candidate):
                return candidate
        out = subprocess.run([self.command[0], "-print-file-name=" + filename],
                             check=True, capture_output=True, text=True).stdout.strip()
        return os.path.realpath(out) if os.path.isabs(out) else None

    def add_static(self, name, shared_path):
        """Uses libNAME.a for the library at shared_path (or found by name)."""
        if name in self.seen:
            return
        self.seen.add(name)
        archive = self.find("lib%s.a" % name, shared_path)
        if not archive:
            fail("lib%s is to be linked statically, but lib%s.a is not installed"
                 % (name, name))
        self.archives.append(archive)
        if shared_path is None:
            shared_path = self.find("lib%s.so" % name)
        if shared_path:
            for soname in needed(os.path.realpath(shared_path)):
                self.add_needed(soname, shared_path)

    def add_needed(self, soname, near):
        if LOADER.match(soname):
            return
        m = SHARED.match(soname)
        if not m:
            fail("unexpected NEEDED entry %s" % soname)
        name = m.group(1)
        if name in RUNTIME:
            return
        if self.static(name):
            self.add_static(name, self.find(soname, near))
        elif soname not in self.dynamic:
            self.dynamic.append(soname)

    def rewrite(self, args):
        kept = []
        for arg in args:
            base = os.path.basename(arg)
            m = SHARED.match(base)
            if m and os.path.isfile(arg) and self.static(m.group(1)):
                self.add_static(m.group(1), arg)
            elif arg.startswith("-l") and not arg.startswith("-l:") and \
                    self.static(arg[2:]):
                self.add_static(arg[2:], None)
            else:
                kept.append(arg)
        group = []
        if self.archives:
            group = ["-Wl,--start-group"] + self.archives + ["-Wl,--end-group"]
        return kept + group + ["-l:" + s for s in self.dynamic]


def main(argv):
    if len(argv) < 4 or argv[1] != "--static" or argv[3] != "--":
        fail("usage: static_link.py --static PATTERN[,PATTERN...] -- LINK COMMAND...")
    patterns = [p for p in argv[2].split(",") if p]
    command = argv[4:]
    if not command:
        fail("no link command")
    linker = Linker(command, patterns)
    final = [command[0]] + linker.rewrite(command[1:])
    if os.environ.get("VOUCH_STATIC_LINK_VERBOSE"):
        sys.stderr.write(" ".join(final) + "\n")
    os.execvp(final[0], final)


if __name__ == "__main__":
    main(sys.argv)
