"""ASR side of sigma_plugin: LibriSpeech-layout data prep for fairseq's speech_to_text task,
greedy CTC decoding and WER/CER scoring (docs/asr.md).

Data prep and scoring (corpus, features, feature_zip, manifest, vocab, data_config, prep_*,
text_norm, score) need no fairseq; decode_ctc does.
"""
