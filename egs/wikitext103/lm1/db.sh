# Corpus location (set the variable before running run.sh).
# WIKITEXT103: the folder of wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens, as
# wikitext-103-v1.zip unpacks (fairseq's examples/language_model/prepare-wikitext-103.sh downloads
# and unpacks it to examples/language_model/wikitext-103). No default.
WIKITEXT103=${WIKITEXT103:-}
