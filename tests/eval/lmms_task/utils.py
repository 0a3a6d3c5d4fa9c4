"""A local lmms-eval task over a parquet file (question, options, answer, image)."""

import io

from PIL import Image


def doc_to_visual(doc):
    image = doc["image"]
    if isinstance(image, dict):
        image = Image.open(io.BytesIO(image["bytes"]))
    return [image.convert("RGB")]


def doc_to_text(doc):
    opts = "\n".join(f"{letter}. {o}" for letter, o in zip("ABCD", doc["options"], strict=False))
    return f"{doc['question']}\n{opts}\nAnswer with the option's letter from the given choices directly."


def process_results(doc, results):
    return {"accuracy": float(results[0].strip()[:1] == doc["answer"])}
