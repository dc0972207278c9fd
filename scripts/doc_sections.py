#!/usr/bin/env python3
"""Checks that every public or package function and initializer in Sources has a doc comment with the
sections its signature calls for: `- Parameter(s)` when it takes named parameters, `- Returns` when it
returns a value, `- Throws` when it throws. (swift-format's ValidateDocumentationComments checks the
sections a comment has, not the ones it lacks.) Prints each miss; exits 1 when there is one.
Run from the package root: python3 scripts/doc_sections.py"""
import glob
import re
import sys

DECL = re.compile(
    r'(@\w+(\(.*?\))?\s+)*(public|open|package)\s+'
    r'(static\s+|override\s+|mutating\s+|nonisolated\s+|convenience\s+|required\s+)*(func|init\?|init)\b')


def signature(lines, i):
    sig = lines[i].strip()
    j = i
    while (sig.count('(') > sig.count(')')) and j + 1 < len(lines) and j - i < 20:
        j += 1
        sig += ' ' + lines[j].strip()
    return sig.split('{')[0]


def parameter_list(sig):
    start = sig.find('(')
    depth, end = 0, -1
    for k in range(start, len(sig)):
        if sig[k] == '(':
            depth += 1
        elif sig[k] == ')':
            depth -= 1
            if depth == 0:
                end = k
                break
    if start < 0 or end < 0:
        return [], ''
    parts, current, depth = [], '', 0
    for c in sig[start + 1:end]:
        if c in '([<':
            depth += 1
        if c in ')]>':
            depth -= 1
        if c == ',' and depth == 0:
            parts.append(current)
            current = ''
        else:
            current += c
    if current.strip():
        parts.append(current)
    return [p for p in parts if ':' in p], sig[end:]


def main():
    missing, total = [], 0
    for path in sorted(glob.glob('Sources/**/*.swift', recursive=True)):
        if 'mfrec-bench' in path or 'EmbedMigrationsTool' in path:
            continue
        lines = open(path, encoding='utf-8').read().split('\n')
        for i, line in enumerate(lines):
            m = DECL.match(line.strip())
            if not m:
                continue
            total += 1
            sig = signature(lines, i)
            k, doc = i - 1, []
            while k >= 0 and (lines[k].strip().startswith('///') or lines[k].strip().startswith('@')):
                doc.insert(0, lines[k].strip())
                k -= 1
            text = ' '.join(doc)
            params, after = parameter_list(sig)
            need = []
            if not doc:
                need.append('a doc comment')
            if params and '- Parameter' not in text:
                need.append('- Parameters')
            if '->' in after and '-> Void' not in after and not m.group(5).startswith('init') \
                    and '- Returns' not in text:
                need.append('- Returns')
            if re.search(r'\b(throws|rethrows)\b', after) and '- Throws' not in text:
                need.append('- Throws')
            if need:
                missing.append(f'{path}:{i + 1}: {", ".join(need)}: {sig[:90]}')
    for miss in missing:
        print(miss)
    print(f'doc sections: {total} public and package functions, {len(missing)} missing a section')
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
