"""Function symbols of the executable and libraries, at their load addresses in the core.

The load bias of each file comes from the core's NT_FILE note: the mapping of file offset 0
sits at bias + (lowest PT_LOAD vaddr, page aligned); for a non-PIE executable the bias is 0.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from restorer.core import Core, page_align_down
from restorer.elf import SHN_UNDEF, STT_FUNC, STT_OBJECT
from restorer.elf_file import read_elf, read_symbols


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    addr: int
    size: int
    path: str


@dataclass(frozen=True, slots=True)
class Location:
    """Where an address falls: a symbol plus offset, or only a file."""

    addr: int
    symbol: Symbol | None
    path: str | None

    def __str__(self) -> str:
        if self.symbol is not None:
            off = self.addr - self.symbol.addr
            return f"{self.symbol.name}+{off:#x}" if off else self.symbol.name
        if self.path is not None:
            return self.path.rsplit("/", 1)[-1]
        return "??"


class SymbolTable:
    def __init__(self, core: Core, path_map: dict[str, str]) -> None:
        self.core = core
        self.path_map = path_map
        self._loaded: dict[tuple[str, int], list[Symbol]] = {}
        self._data: dict[str, dict[str, int]] = {}
        self._biases: dict[str, int] = {}
        for f in core.files:
            if f.offset != 0 or f.path in self._biases:
                continue
            real = path_map.get(f.path, f.path)
            info = read_elf(real)
            if info is None or not info.segments:
                continue
            lowest = min(s.vaddr for s in info.segments)
            self._biases[f.path] = f.start - page_align_down(lowest)

    def bias(self, core_path: str) -> int | None:
        return self._biases.get(core_path)

    def _symbols(self, core_path: str, kind: int = STT_FUNC) -> list[Symbol]:
        """Symbols of type `kind` (functions; STT_OBJECT: data) of one mapped file."""
        if (core_path, kind) in self._loaded:
            return self._loaded[(core_path, kind)]
        syms: list[Symbol] = []
        bias = self._biases.get(core_path)
        if bias is not None:
            tables = read_symbols(self.path_map.get(core_path, core_path))
            seen: set[tuple[str, int]] = set()
            for table in (tables.symtab, tables.dynsym):
                for s in table:
                    if s.type != kind or not s.value or not s.name:
                        continue
                    key = (s.name, s.value)
                    if key in seen:
                        continue
                    seen.add(key)
                    syms.append(Symbol(s.name, bias + s.value, s.size, core_path))
        syms.sort(key=lambda s: s.addr)
        self._loaded[(core_path, kind)] = syms
        return syms

    def lookup(self, addr: int) -> Location:
        f = self.core.file_at(addr)
        if f is None:
            return Location(addr, None, None)
        syms = self._symbols(f.path)
        starts = [s.addr for s in syms]
        i = bisect.bisect_right(starts, addr) - 1
        while i >= 0:
            s = syms[i]
            if s.addr <= addr < s.addr + max(s.size, 1):
                return Location(addr, s, f.path)
            if s.size:  # sized symbol not covering addr: stop looking further back
                break
            i -= 1
        return Location(addr, None, f.path)

    def data_symbol(self, name: str, in_file_at: int | None = None) -> int | None:
        """Load address of a dynamic data (STT_OBJECT) symbol, e.g. glibc's __rseq_offset.

        `in_file_at`: search only the file mapped at that address.
        """
        files = list(self._biases.items())
        if in_file_at is not None:
            f = self.core.file_at(in_file_at)
            files = [] if f is None else [(f.path, self._biases.get(f.path, 0))]
        for core_path, bias in files:
            value = self._dynamic_data(core_path).get(name)
            if value is not None:
                return bias + value
        return None

    def _dynamic_data(self, core_path: str) -> dict[str, int]:
        """Name -> link-time value of the data objects a file defines in .dynsym."""
        found = self._data.get(core_path)
        if found is None:
            found = {}
            for s in read_symbols(self.path_map.get(core_path, core_path)).dynsym:
                if s.type == STT_OBJECT and s.shndx != SHN_UNDEF:
                    found.setdefault(s.name, s.value)
            self._data[core_path] = found
        return found

    def resolve(self, name: str) -> int | None:
        """Address of function `name`, searching the executable first; else of the
        executable's data object `name`."""
        paths = []
        exe = self.core.exe_path
        if exe is not None:
            paths.append(exe)
        paths += [p for p in self._biases if p != exe]
        for p in paths:
            for s in self._symbols(p):
                if s.name == name:
                    return s.addr
        for s in self._symbols(exe, STT_OBJECT) if exe is not None else []:
            if s.name == name:
                return s.addr
        return None
