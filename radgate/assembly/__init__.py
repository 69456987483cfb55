"""Study assembly: when a series or study is complete, and what happens to incomplete ones."""

from radgate.assembly.assembler import Assembler, AssemblyReport, SeriesCompleteHook, set_expected

__all__ = ["Assembler", "AssemblyReport", "SeriesCompleteHook", "set_expected"]
