"""Rule train_tokenizer: byte-level BPE on (a prefix of) the corpus."""
from shardmix import tokenizer
from shardmix.corpus import CorpusError, read_documents
from shardmix.jobs import fail, job_args

args = job_args()


def texts(limit):
    used = 0
    for doc in read_documents(args["corpus"]):
        if used >= limit:
            return
        used += len(doc.text.encode("utf-8"))
        yield doc.text


try:
    tok = tokenizer.train_bpe(texts(args["max_train_bytes"]), args["vocab_size"], args["out"])
except CorpusError as e:
    fail(str(e))
print(f"trained a byte-level BPE tokenizer of {len(tok)} tokens into {args['out']}")
