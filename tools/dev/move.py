#!/usr/bin/env python3
"""Moves TypeScript modules (git mv) and rewrites every relative import that names them, in src/, test/,
bench/ and tools/. Usage: move.py old=new [old=new ...]  (paths relative to the repository root)."""
import os, re, subprocess, sys

root = subprocess.check_output(['git', 'rev-parse', '--show-toplevel'], text=True).strip()
os.chdir(root)
moves = dict(a.split('=', 1) for a in sys.argv[1:])
for old, new in moves.items():
    os.makedirs(os.path.dirname(new), exist_ok=True)
    subprocess.check_call(['git', 'mv', old, new])
inverse = {v: k for k, v in moves.items()}

SPEC = re.compile(r"""((?:from|import)\s*\(?\s*|new URL\(\s*)(['"])(\.{1,2}/[^'"]+)\2""")

def rewrite(file_new):
    file_old = inverse.get(file_new, file_new)
    text = open(file_new, encoding='utf8').read()
    def sub(m):
        spec = m.group(3)
        base, ext = os.path.splitext(spec)
        if ext not in ('.js', '.ts', '.mjs'):
            return m.group(0)
        target_old = os.path.normpath(os.path.join(os.path.dirname(file_old), base + '.ts'))
        if not os.path.exists(target_old) and target_old not in moves:
            target_old_js = target_old  # not a moved module
        target_new = moves.get(target_old, target_old)
        rel = os.path.relpath(os.path.splitext(target_new)[0], os.path.dirname(file_new)) + ext
        if not rel.startswith('.'):
            rel = './' + rel
        return f"{m.group(1)}{m.group(2)}{rel}{m.group(2)}"
    out = SPEC.sub(sub, text)
    if out != text:
        open(file_new, 'w', encoding='utf8').write(out)

for top in ('src', 'test', 'bench', 'tools'):
    for d, _, files in os.walk(top):
        for f in files:
            if f.endswith(('.ts', '.mjs')):
                rewrite(os.path.join(d, f))
