"""Benchmark: the analysts' web pages at scale, over HTTP.

Builds a database with N queue items (default 100,000) and 3·N decisions with the builder of
queue_bench.py, then gives every document a press release of 4-6 KB and every suggestion a few
quotes per dimension that sit in that text (so item pages highlight them), and adds an analyst.
Serves the web application with uvicorn in its own process on a free 127.0.0.1 port, logs in
with an httpx client and times R requests (default 200) to each of:
  - the queue, first page, default ordering (needs attention first);
  - the queue filtered by member and state=pending;
  - a deep queue page (page 500, or the last page if there are fewer);
  - item pages, random items;
  - reference: /static/app.css, a static file: the cost of HTTP and the framework alone.
The kinds of request take turns (one of each per round, after a short warm-up), so that load
from elsewhere on the machine falls on all of them alike. Prints p50, p95 and max per page,
its size, and its p50 over the reference's p50.

    python -m bench.web_bench [--items 100000] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn

from bench.queue_bench import MEMBERS, build
from classifier.rubric import load_rubrics
from classifier.store import open_db
from classifier.users import add_user
from classifier.web import PAGE_SIZE, create_app

ROOT = Path(__file__).resolve().parents[1]
ANALYST, PASSWORD = "bench", "bench-password-1"
WARMUP = 5  # untimed requests of each kind before the timed rounds
DEEP_PAGE = 500
FILTER_MEMBER = MEMBERS[1]
# Paragraphs of the synthetic press releases; {member}, {n} and {date} vary per item. The sentence
# between [[ and ]] in each is the one a suggestion may quote.
PARAGRAPHS = [
    "{member}, {date}. [[The Ministry of the Interior today announced the deployment of 120 additional border "
    "guards to the southern land border as part of operation {n}.]] The officers will support existing patrols at "
    "four crossing points and will be equipped with new thermal cameras and mobile identification terminals, "
    "financed under the national border management programme adopted last spring.",
    "The minister said that the reinforcement answers the rise in irregular crossings observed over the summer "
    "and follows consultations with the authorities of neighbouring countries of transit. [[Joint patrols with "
    "the border police of two transit countries will begin next month under a new bilateral protocol.]] Liaison "
    "officers will be posted at the main ports to exchange information in real time.",
    "[[Investigators dismantled a criminal network that smuggled at least 350 migrants across the sea in "
    "overcrowded boats, arresting eleven suspects in three countries.]] The operation, coordinated with Europol "
    "and Eurojust, followed an investigation of more than eighteen months into the network's finances, its "
    "recruiters in countries of origin and the drivers who moved people along the route.",
    "[[Assets worth 4.2 million euros, including vehicles, boats and bank accounts, were seized to disrupt the "
    "business model of the smugglers.]] Prosecutors said that the proceeds had been laundered through money "
    "transfer agencies and front companies in the construction sector, and that further freezing orders have "
    "been requested from partner jurisdictions.",
    "The government also announced funding of 15 million for partner countries in North Africa and the Sahel. "
    "[[The programme will train prosecutors and judges in countries of origin and transit to investigate and "
    "try migrant smuggling and trafficking in persons cases.]] It will be implemented with the United Nations "
    "Office on Drugs and Crime over three years and will include a mentoring scheme for specialised units.",
    "Victims of trafficking identified during the operation have been referred to specialised shelters. "
    "[[Every person rescued was offered medical care, legal counselling and an interview with a trained "
    "officer to identify victims of trafficking.]] Unaccompanied minors were placed under the protection of "
    "the child welfare services, in line with the national referral mechanism.",
    "The coast guard reported that its vessels had carried out 48 search and rescue operations since June. "
    "[[A new surveillance aircraft and two patrol boats will enter service before the end of the year to "
    "monitor the maritime border.]] The procurement was accelerated under the emergency provisions of the "
    "budget law and is co-financed by the Integrated Border Management Fund.",
    "[[Cooperation with social media companies led to the removal of more than 900 online advertisements "
    "offering illegal crossings in the first half of the year.]] The referral unit of the national police "
    "works with the companies under a voluntary code of conduct and shares trends with partner agencies so "
    "that the smugglers' new channels are detected early.",
    "Parliament adopted amendments to the criminal code that raise the penalties for aggravated smuggling. "
    "[[Smuggling that endangers life will now carry a sentence of up to fifteen years, and the confiscation "
    "of instruments and proceeds becomes mandatory.]] The reform also gives investigators access to "
    "financial records without a prior court order in urgent cases.",
    "At a ministerial meeting with countries of origin, the minister signed two memoranda of understanding on "
    "return and readmission and on legal pathways for seasonal workers. [[The partners agreed to set up a "
    "joint investigation team on the smuggling route within six months.]] A follow-up meeting of senior "
    "officials is planned for the beginning of next year.",
    "The statistics published today show 2,340 arrests of suspected smugglers in the first nine months, "
    "an increase of 12 per cent compared with the same period last year. [[Border checks were extended to "
    "all internal flights departing from the islands.]] The ministry will publish a full annual report on "
    "border management in the spring.",
    "Non-governmental organisations welcomed the funding for victim protection but asked for independent "
    "monitoring of border procedures. [[The government committed to publishing quarterly data on pushback "
    "complaints and their investigation.]] An inter-ministerial working group will review the complaints "
    "procedure and report to parliament.",
    "In a joint statement, the interior ministers of the region agreed to strengthen the exchange of "
    "passenger information and biometric data. [[A regional coordination centre for border surveillance will "
    "open in the capital and will be staffed by officers from six partner countries.]] The centre will produce "
    "common risk analyses and coordinate the deployment of assets along the external border.",
    "The ministry recalled that the national action plan against trafficking in persons runs until 2027. "
    "[[Labour inspectors received new powers to enter farms and construction sites where forced labour of "
    "migrants is suspected.]] Employers found to exploit trafficked workers will be excluded from public "
    "contracts and subsidies for five years.",
    "Financial intelligence units of the partner countries met to share typologies of smuggling proceeds. "
    "[[Banks and money transfer operators will receive updated red-flag indicators on payments linked to "
    "migrant smuggling.]] The indicators were prepared with the Financial Action Task Force and will be "
    "reviewed every year in light of new cases.",
    "For further information, journalists may contact the press office of the Ministry of the Interior. "
    "Background material, photographs of the operation and the text of the bilateral protocol are available "
    "on the ministry's website. This release is also available in the official languages of the partners.",
]
MARKER = re.compile(r"\[\[(.*?)\]\]")


def release(rng: random.Random, member: str, item: int, published: str) -> tuple[str, list[str]]:
    """A press release of 4-6 KB for an item, and the sentences in it a suggestion may quote."""
    target = rng.randint(4000, 5700) - len(PARAGRAPHS[-1])
    parts = [PARAGRAPHS[0]]
    for paragraph in rng.sample(PARAGRAPHS[1:-1], len(PARAGRAPHS) - 2):
        if sum(map(len, parts)) >= target:
            break
        parts.append(paragraph)
    parts.append(PARAGRAPHS[-1])
    text = "\n\n".join(p.format(member=member, n=f"SEA-{item}", date=published) for p in parts)
    quotable = MARKER.findall(text)
    return MARKER.sub(r"\1", text), quotable


def add_texts(db, items: int) -> None:
    """Every item's document gets a realistic release; every dimension 1-2 quotes located in it."""
    rng = random.Random(11)
    conn = db.conn
    rows = conn.execute(
        "select q.id, q.document_id, q.member, q.suggestion, v.published from queue_items q "
        "join document_versions v on v.document_id = q.document_id and v.content_sha256 = q.content_sha"
    ).fetchall()
    texts, suggestions = [], []
    for item, document, member, raw, published in rows:
        text, quotable = release(rng, member, item, published)
        suggestion = json.loads(raw)
        for value in suggestion["dimensions"].values():
            quotes = []
            for quote in rng.sample(quotable, rng.randint(1, 2)):
                start = text.index(quote)
                quotes.append({"quote": quote, "start": start, "end": start + len(quote), "method": "exact",
                               "score": 100.0})  # fmt: skip
            value["quotes"] = quotes
        title = f"{member}: border guards reinforced and smuggling network dismantled (operation SEA-{item})"
        texts.append((text, title, "Ministry of the Interior", document))
        suggestions.append((json.dumps(suggestion), item))
    conn.execute("BEGIN")
    conn.executemany(
        "update document_versions set text = ?, title = ?, site = ? where document_id = ?", texts
    )
    conn.executemany("update queue_items set suggestion = ? where id = ?", suggestions)
    conn.execute("COMMIT")


def serve(db_path: Path, sock: socket.socket) -> None:
    """The web application under uvicorn, in its own process, on the socket opened for it."""
    app = create_app(db_path)
    config = uvicorn.Config(
        app, log_level="warning", server_header=False, proxy_headers=False, access_log=False
    )
    uvicorn.Server(config).run(sockets=[sock])


def wait_until_up(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + "/static/app.css", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the web application did not answer at {base} within {timeout:.0f} s")
        time.sleep(0.1)


def log_in(client: httpx.Client) -> None:
    form = client.get("/login")
    form.raise_for_status()
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if csrf is None:
        raise SystemExit("the login page has no CSRF field")
    response = client.post(
        "/login", data={"csrf": csrf.group(1), "name": ANALYST, "password": PASSWORD, "next": "/queue"}
    )
    if response.status_code != 303 or "evidence_session" not in client.cookies:
        raise SystemExit(f"login failed: HTTP {response.status_code}")


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests of each kind")
    args = parser.parse_args()
    rubrics = load_rubrics(ROOT / "corpus" / "commitments")
    deep = max(1, min(DEEP_PAGE, -(-args.items // PAGE_SIZE)))
    rng = random.Random(3)
    kinds = {
        "queue (needs attention first)": lambda: "/queue",
        f"queue member={FILTER_MEMBER} state=pending": lambda: f"/queue?member={FILTER_MEMBER}&state=pending",
        f"queue page {deep}": lambda: f"/queue?page={deep}",
        "item page (random item)": lambda: f"/items/{rng.randint(1, args.items)}",
        "reference: /static/app.css": lambda: "/static/app.css",
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = open_db(path)
        started = time.perf_counter()
        build(db, args.items, rubrics)
        rows_time = time.perf_counter() - started
        add_texts(db, args.items)
        add_user(db, ANALYST, PASSWORD, "analyst")
        build_time = time.perf_counter() - started
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        items, decisions = db["queue_items"].count, db["decisions"].count
        text_kb = db.execute("select avg(length(text)) / 1000.0 from document_versions").fetchone()[0]
        db.conn.close()
        size_mb = path.stat().st_size / 1e6
        print(f"database: {items} items, {decisions} decisions, texts {text_kb:.1f} KB on average, "
              f"{size_mb:.0f} MB")  # fmt: skip
        print(f"built in {build_time:.1f} s (queue rows {rows_time:.1f} s, texts and quotes "
              f"{build_time - rows_time:.1f} s)")  # fmt: skip

        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted connections only for sockets
        # whose protocol says TCP, as when uvicorn binds the port itself (`evidence serve`); without
        # it, delayed ACKs would add about 40 ms to responses written in more than one piece.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        context = multiprocessing.get_context("fork")
        server = context.Process(target=serve, args=(path, sock), daemon=True)
        server.start()
        sock.close()
        try:
            wait_until_up(base)
            times: dict[str, list[float]] = {label: [] for label in kinds}
            sizes: dict[str, list[int]] = {label: [] for label in kinds}
            with httpx.Client(base_url=base, timeout=60) as client:
                log_in(client)
                started = time.perf_counter()
                for round_ in range(WARMUP + args.requests):
                    for label, url in kinds.items():
                        target = url()
                        begin = time.perf_counter()
                        response = client.get(target)
                        elapsed = time.perf_counter() - begin
                        if response.status_code != 200:
                            raise SystemExit(f"GET {target}: HTTP {response.status_code}")
                        if round_ >= WARMUP:
                            times[label].append(elapsed)
                            sizes[label].append(len(response.content))
                total = time.perf_counter() - started
        finally:
            server.terminate()
            server.join(10)

    reference = statistics.median(times["reference: /static/app.css"])
    print(
        f"uvicorn in its own process, one client, {args.requests} timed requests of each kind "
        f"(after {WARMUP} untimed), {total:.1f} s in all"
    )
    print(f"{'page':<36} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'KB':>6} {'p50/ref':>8}")
    for label, measured in times.items():
        p50 = statistics.median(measured)
        print(
            f"{label:<36} {p50 * 1000:8.1f} {percentile(measured, 0.95) * 1000:8.1f} {max(measured) * 1000:8.1f} "
            f"{statistics.mean(sizes[label]) / 1000:6.1f} {p50 / reference:8.1f}"
        )


if __name__ == "__main__":
    main()
