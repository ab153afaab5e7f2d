"""Summarise the server errors in a gunicorn + Django log: one block per distinct exception and
place, with the first request that raised it and the innermost frames of its traceback.

Django logs a view's exception ("ERROR django.request Internal Server Error: <path>"); gunicorn
logs one raised while a streamed body was being sent ("[ERROR] Error handling request <url>").
"""

import re
import sys

START = re.compile(
    r"^(?:\S+ \S+ ERROR django\.request (?P<django>.*)"
    r"|\[[^]]+\] \[\d+\] \[ERROR\] (?P<gunicorn>Error handling request .*))$"
)
OTHER = re.compile(r"^(\[[^]]+\] \[\d+\] \[|\d{4}-\d\d-\d\d \d\d:)")
EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)(:|$)")


def entries(lines):
    current = None
    for line in lines:
        line = line.rstrip("\n")
        match = START.match(line)
        if match:
            if current:
                yield current
            current = [(match.group("django") or match.group("gunicorn"))[:300]]
        elif current is not None and OTHER.match(line):
            yield current
            current = None
        elif current is not None:
            current.append(line)
    if current:
        yield current


def main(path):
    seen = {}
    with open(path, errors="replace") as log:
        for entry in entries(log):
            frames = [line.strip() for line in entry[1:] if line.strip().startswith("File ")]
            ours = [f for f in frames if "site-packages" not in f and "/lib/python3" not in f]
            where = list(dict.fromkeys(ours[-1:] + frames[-1:]))  # our innermost, the innermost
            exception = next((line for line in reversed(entry) if EXCEPTION.match(line)), "?")
            key = (exception.split(":")[0], *where)
            first, _, where, count = seen.get(key, (entry[0], exception, where, 0))
            seen[key] = (first, exception, where, count + 1)
    for first, exception, where, count in seen.values():
        print(f"- {count}x {first}")
        print(f"  {exception[:300]}")
        for frame in where:
            print(f"    {frame}")
    if not seen:
        print("(no server error logged)")


if __name__ == "__main__":
    main(sys.argv[1])
