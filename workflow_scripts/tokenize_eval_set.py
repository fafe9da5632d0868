"""Rule tokenize_eval_set: an extra evaluation set as one flat token file."""
import numpy as np

from shardmix import tokenizer, tokens
from shardmix.corpus import CorpusError, read_documents
from shardmix.jobs import fail, job_args

args = job_args()
tok = tokenizer.load(args["tokenizer"])
try:
    texts = [d.text for d in read_documents(args["spec"], origin=f"eval_sets '{args['spec']['name']}'")]
except CorpusError as e:
    fail(str(e))
ids = np.concatenate(tokenizer.encode_documents(tok, texts)) if texts else np.zeros(0, dtype=np.int64)
tokens.save(args["out"], ids, len(tok), seal=True)
print(f"{args['spec']['name']}: {len(texts)} documents, {len(ids)} tokens")
