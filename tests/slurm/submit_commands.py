"""Print the jobs of an HTCondor submit file as the commands an execute node
runs: one line per job, "role<TAB>initialdir<TAB>executable<TAB>arg<TAB>arg...".

    submit_commands.py FILE [name=value]...

Each name=value replaces that macro wherever the file assigns it (as if the
file had been edited). Understands what deploy/nessai.sub uses: "name = value"
lines, $(name) macros, "queue N", and the double-quoted argument syntax
without embedded quotes. HTCondor itself is not packaged for Debian 12.
"""
import re
import sys


def main():
    path, overrides = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
    macros = {k.lower(): v for k, v in overrides.items()}
    cluster = 1
    process = 0

    def expand(text, depth=0):
        if depth > 20:
            raise SystemExit(f"{path}: macros nest too deep in {text!r}")

        def one(m):
            name = m.group(1).lower()
            if name == "cluster":
                return str(cluster)
            if name == "process":
                return str(process)
            if name not in macros:
                raise SystemExit(f"{path}: undefined macro $({m.group(1)})")
            return expand(macros[name], depth + 1)

        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_.]*)\)", one, text)

    for raw in open(path, encoding="utf-8"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"queue(?:\s+(\d+))?", line, re.IGNORECASE)
        if m:
            for _ in range(int(m.group(1) or 1)):
                args = expand(macros.get("arguments", ""))
                if args.startswith('"') and args.endswith('"'):
                    args = args[1:-1]
                fields = [expand(macros.get("role", "")), expand(macros.get("initialdir", ".")),
                          expand(macros["executable"])] + args.split()
                print("\t".join(fields))
                process += 1
            continue
        m = re.fullmatch(r"([+A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)", line)
        if not m:
            raise SystemExit(f"{path}: cannot read the line {line!r}")
        name = m.group(1).lower()
        if name not in {k.lower() for k in overrides}:
            macros[name] = m.group(2)


main()
