"""Runs llama.cpp's convert_hf_to_gguf.py on Debian's python3-torch 1.13.

Usage: convert_hf_to_gguf_shim.py CONVERT_HF_TO_GGUF.py ARGS...

The converter names torch's float8 and wide unsigned dtypes (torch 2.1+) in a table of
dtypes it can meet in a checkpoint; lathe's folders hold none of them, so placeholders
that match nothing stand in for them. Nothing else is changed.
"""
import os
import runpy
import sys

import torch

for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "uint16",
             "uint32", "uint64"):
    if not hasattr(torch, name):
        setattr(torch, name, type(name, (), {})())
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
runpy.run_path(sys.argv[0], run_name="__main__")
