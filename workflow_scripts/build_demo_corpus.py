"""Rule demo_corpus: the embedded demo corpus from the downloaded public-domain packages."""
from shardmix import demo_corpus
from shardmix.jobs import fail, job_args

args = job_args()
try:
    counts = demo_corpus.build(args["sources"], args["corpus"], args["eval_dir"])
except demo_corpus.DemoSourceError as e:
    fail(str(e))
print(f"documents per domain: {counts}")
