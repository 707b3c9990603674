"""gnnff-stability: stability of GNN force fields, with and without feature decorrelation (HfO2 by default).

Units used throughout the library (stated once, as in LAMMPS ``units metal``):
length Å, energy eV, force eV/Å, time ps in LAMMPS and fs in configuration keys named ``*_fs``,
temperature K. Tables report energy errors in meV/atom and force errors in meV/Å.
"""

__version__ = "0.1.0"
