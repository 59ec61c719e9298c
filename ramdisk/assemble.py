"""Put Debian packages into a ramdisk tree and complete it with the shared libraries its programs
load, found by reading the programs (ELF DT_NEEDED) rather than by trusting a list.

A library a program needs is looked for in the packages the program's own package depends on
(Debian records every library dependency there, through dpkg-shlibdeps), and only that library
(its file and the symlinks to it) is taken from the package.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ramdisk import debs, elf
from ramdisk.contents import ARCH_LIBS, LIBRARIES, Selection
from ramdisk.tree import Tree, matches_any, merged_path

LIBRARY_DIRECTORIES = (ARCH_LIBS, "usr/lib", "usr/lib64")
LOADER_ORIGIN = "$ORIGIN"
PYTHON_PACKAGE_PREFIX = "python3-"
MAX_LIBRARY_LINKS = 8


class AssemblyError(debs.DebError):
    """The packages do not make a complete root: a library or link target is missing."""


@dataclass
class Assembly:
    """A tree being filled from packages cached in `debs_dir`."""

    debs_dir: Path
    pruned: tuple[str, ...]
    not_needed: dict[str, str]
    query_depends: Callable[[list[str]], dict[str, list[str]]] = debs.depends
    tree: Tree = field(default_factory=Tree)
    taken: dict[str, tuple[str, ...]] = field(default_factory=dict)  # package -> its patterns
    package_files: dict[str, Path] = field(default_factory=dict)  # package -> the .deb used
    _checked: set[str] = field(default_factory=set)
    _library_members: dict[str, dict[str, debs.Member]] = field(default_factory=dict)
    _required: list[tuple[str, str]] = field(default_factory=list)
    _depends: dict[str, list[str]] = field(default_factory=dict)

    def depends(self, package: str) -> list[str]:
        if package not in self._depends:
            self.prefetch_depends([package])
        return self._depends[package]

    def prefetch_depends(self, packages: list[str]) -> None:
        """Ask apt about all of `packages` at once (each apt-cache run costs about a second)."""
        wanted = sorted(set(packages) - self._depends.keys())
        self._depends.update(self.query_depends(wanted))

    def deb(self, package: str) -> Path:
        if package not in self.package_files:
            self.package_files[package] = debs.download(package, self.debs_dir)
        return self.package_files[package]

    def take(self, selection: Selection) -> None:
        """Add the selected paths of the package; for `with_depends`, also its Python
        dependencies (whole, recursively). Its other dependencies must be taken some other
        way (see unmet_dependencies) or be listed as not needed."""
        pending = [selection]
        while pending:
            current = pending.pop(0)
            before = self.taken.get(current.package, ())
            patterns = tuple(dict.fromkeys((*before, *current.paths)))
            if patterns != before:
                self.taken[current.package] = patterns
                self._extract(current.package, current.paths)
            if not current.with_depends:
                continue
            for dependency in self.depends(current.package):
                if dependency in self.not_needed:
                    continue
                if dependency.startswith(PYTHON_PACKAGE_PREFIX):
                    pending.append(Selection(dependency, with_depends=True))
                else:
                    self._required.append((current.package, dependency))

    def unmet_dependencies(self) -> list[str]:
        """Non-Python dependencies of `with_depends` packages that nothing took."""
        return sorted({f"{package} needs {dependency}" for package, dependency in self._required
                       if dependency not in self.taken})

    def _extract(self, package: str, patterns: tuple[str, ...]) -> None:
        def wanted(path: str) -> bool:
            placed = merged_path(path)
            return matches_any(placed, patterns) and not matches_any(placed, self.pruned)

        deb = self.deb(package)
        members = debs.read_tree(deb, wanted)
        if not members:
            raise AssemblyError(f"{deb.name} has nothing matching {', '.join(patterns)}")
        for member in members:
            path = merged_path(member.path)
            if member.kind == "file":
                self.tree.add_file(path, member.data, member.mode, package)
            elif member.kind == "symlink":
                self.tree.add_symlink(path, member.target, package)
            else:  # a hard link: the same file under another name
                self.tree.add_symlink(path, "/" + merged_path(member.target), package)

    # -- shared libraries ------------------------------------------------------------------

    def _find_library(self, soname: str, runpath: tuple[str, ...], directory: str) -> bool:
        searched = [path.replace(LOADER_ORIGIN, "/" + directory) for path in runpath]
        return any(self.tree.file(posixpath.join(place, soname)) is not None
                   for place in [*searched, *LIBRARY_DIRECTORIES])

    def _libraries_of(self, package: str) -> dict[str, debs.Member]:
        """The package's shared libraries (files and symlinks) by their path in the ramdisk."""
        if package not in self._library_members:
            self._library_members[package] = {
                merged_path(member.path): member
                for member in debs.read_tree(
                    self.deb(package), lambda path: matches_any(merged_path(path), LIBRARIES))}
        return self._library_members[package]

    def _library_paths(self, package: str, soname: str) -> list[str]:
        """The paths making up library `soname` in `package`: its name and the symlinks it
        leads through to the file (libfoo.so.1 -> libfoo.so.1.2.3); empty if it has none."""
        members = self._libraries_of(package)
        found = [path for path in members if posixpath.basename(path) == soname]
        paths: list[str] = []
        while found and found[0] not in paths and len(paths) <= MAX_LIBRARY_LINKS:
            path = found[0]
            paths.append(path)
            member = members[path]
            if member.kind == "file":
                return paths
            target = member.target if member.kind == "symlink" else "/" + member.target
            if not target.startswith("/"):
                target = posixpath.join(posixpath.dirname(path), target)
            found = [merged_path(posixpath.normpath(target))]
            if found[0] not in members:
                return []
        return []

    def _provider(self, soname: str, package: str) -> tuple[str, list[str]] | None:
        """The dependency of `package` that ships library `soname`, and the library's paths."""
        for candidate in self.depends(package):
            if candidate in self.not_needed:
                continue
            paths = self._library_paths(candidate, soname)
            if paths:
                return candidate, paths
        return None

    def _missing_libraries(self) -> list[tuple[str, str, str]]:
        """(program path, its package, soname or interpreter) that the tree cannot load."""
        missing = []
        for path, node in self.tree.files():
            if path in self._checked or not elf.is_x86_64_elf(node.data):
                continue
            dynamic = elf.dynamic(node.data)
            unresolved = []
            if dynamic is not None:
                if dynamic.interpreter and self.tree.file(dynamic.interpreter) is None:
                    unresolved.append(dynamic.interpreter)
                directory = posixpath.dirname(path)
                unresolved += [soname for soname in dynamic.needed
                               if not self._find_library(soname, dynamic.runpath, directory)]
            if unresolved:
                missing += [(path, node.origin, name) for name in unresolved]
            else:
                self._checked.add(path)
        return missing

    def complete_libraries(self) -> None:
        """Take the libraries every ELF program and library in the tree needs, recursively."""
        while missing := self._missing_libraries():
            self.prefetch_depends([package for _, package, _ in missing])
            self.prefetch_depends([dependency for _, package, _ in missing
                                   for dependency in self.depends(package)])
            progress = False
            for path, package, soname in missing:
                found = None if soname.startswith("/") else self._provider(soname, package)
                if found is None:
                    raise AssemblyError(
                        f"/{path} (from {package}) needs {soname}, which no package it depends "
                        f"on ships")
                provider, paths = found
                if not set(paths) <= set(self.taken.get(provider, ())):
                    self.take(Selection(provider, tuple(paths)))
                    progress = True
            if not progress:
                names = ", ".join(sorted({soname for _, _, soname in missing}))
                raise AssemblyError(f"libraries still missing after taking their packages: "
                                    f"{names}")

    def dangling_symlinks(self) -> list[str]:
        return sorted(path for path, node in self.tree.nodes.items()
                      if node.kind == "symlink" and self.tree.resolve(path) is None)
