"""BM25 retrieval (bm25s on jieba words) on a toy corpus, its cache round trip, and the prompt layout."""

from __future__ import annotations

from qilin_lib.evaluation.rag import RAG_HEADER, BM25Retriever, jieba_terms, rag_prompt

CORPUS = ["糖尿病的常用药物包括二甲双胍和胰岛素。", "肺炎的常见症状有咳嗽、发热和胸痛。",
          "高血压患者常有头痛、头晕，可服用氨氯地平。", "骨质疏松症的常见症状包括腰背痛、身高变矮。"]


def test_retrieves_the_passage_that_shares_the_query_terms():
    retriever = BM25Retriever.build(CORPUS)
    hits = retriever.search("糖尿病应该用什么药物治疗？", k=2)
    assert hits[0][0] == CORPUS[0]
    assert hits[0][1] > (hits[1][1] if len(hits) > 1 else 0)
    assert retriever.search("肺炎有哪些症状", k=1)[0][0] == CORPUS[1]


def test_unknown_terms_and_punctuation_retrieve_nothing():
    retriever = BM25Retriever.build(CORPUS)
    assert retriever.search("量子计算机", k=3) == []
    assert "，" not in jieba_terms("咳嗽，发热。") and "咳嗽" in jieba_terms("咳嗽，发热。")


def test_index_round_trips_through_disk(tmp_path):
    BM25Retriever.build(CORPUS).save(tmp_path)
    loaded = BM25Retriever.load(tmp_path)
    assert loaded.search("高血压吃什么药", k=1)[0][0] == CORPUS[2]


def test_prompt_puts_cut_passages_under_the_header():
    prompt = rag_prompt("问题\n答案：", ["甲" * 50, "乙乙"], max_chars=10)
    assert prompt.startswith(RAG_HEADER)
    assert "[1] " + "甲" * 10 + "\n[2] 乙乙\n\n问题\n答案：" in prompt
    assert rag_prompt("问题", [], max_chars=10) == "问题"
