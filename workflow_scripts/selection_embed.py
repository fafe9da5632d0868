"""Rule selection_embed: one embedding per candidate unit, reused by every target and method."""
from shardmix.warm import delegate

delegate()  # where a warm-start server answers, a fork of it runs this script (shardmix.warm)
import time

import numpy as np

from shardmix import embedding, tokenizer
from shardmix.jobs import fail, job_args, job_device, write_json

args = job_args()
device = job_device()
start = time.perf_counter()
try:
    embed = embedding.Embedder(args["seed"], tokenizer.load(args["tokenizer"]), args["encoder"], device,
                               args["batch_size"])
except embedding.EmbeddingError as e:
    fail(str(e))
units = np.load(args["units"])["units"]
vectors = embed(units, log=lambda m: print(m, flush=True))
np.save(args["out"], vectors)
seconds = time.perf_counter() - start
write_json(args["info"], {"embedder": embed.source, "units": len(units), "width": embed.width,
                          "device": str(device), "seconds": round(seconds, 2)})
print(f"{len(units)} units embedded by the {embed.source} on {device} in {seconds:.1f} s")
