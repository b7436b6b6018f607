# Writes 50 MB of output.
import sys
line = "x" * 1000 + "\n"
for _ in range(50_000):
    sys.stdout.write(line)
