# Asks for 6 GiB, more than the sandbox allows, touching every page.
blocks = []
for _ in range(24):
    blocks.append(bytearray(256 << 20))
print("allocated", len(blocks) / 4, "GiB")
