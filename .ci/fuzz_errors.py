"""Summarise the server errors in a gunicorn/Django log: one block per distinct exception and
place, with the request that raised it first and the innermost frames of its traceback."""

import re
import sys

ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ERROR django\.request (.*)$")


def entries(lines):
    current = None
    for line in lines:
        match = ENTRY.match(line)
        if match:
            if current:
                yield current
            current = [match.group(1)]
        elif current is not None:
            if line.startswith("[") and "gunicorn" not in line and line[1:5].isdigit():
                yield current
                current = None
            else:
                current.append(line.rstrip("\n"))
    if current:
        yield current


def main(path):
    seen = {}
    with open(path, errors="replace") as log:
        for entry in entries(log):
            frames = [line.strip() for line in entry if line.strip().startswith("File ")]
            exception = next((line for line in reversed(entry) if line and line[0] != " "), "")
            key = (exception.split(":")[0], frames[-1] if frames else "")
            seen.setdefault(key, (entry[0], exception, frames[-3:], 0))
            first, exc, where, count = seen[key]
            seen[key] = (first, exc, where, count + 1)
    for first, exc, where, count in seen.values():
        print(f"- {count}x {first}")
        print(f"  {exc[:300]}")
        for frame in where:
            print(f"    {frame}")
    if not seen:
        print("(no server error logged)")


if __name__ == "__main__":
    main(sys.argv[1])
