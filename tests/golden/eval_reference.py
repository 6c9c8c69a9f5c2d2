#!/usr/bin/python3
"""Independent Python re-implementation of the evaluation metrics, used to make the golden
files under tests/golden/eval/ that tests/test_metrics.cpp and tests/test_psds.cpp compare the
C++ code against.

It follows the published definitions (sed_eval's EventBasedMetrics / SegmentBasedMetrics with
optimal and greedy matching, psds_eval / sed_scores_eval intersection-based PSDS) on a random but
seeded evaluation set. Python's dicts keep insertion order natively, so the maximum matching
below walks the graph in the same order sed_eval does without any emulation.

Run:  /usr/bin/python3 tests/golden/eval_reference.py tests/golden/eval
"""
import json
import math
import os
import random
import sys

import numpy as np

EPS = float(np.spacing(1))
CLASSES = ["alarm", "bark", "cough"]


def make_case(seed=7):
    rng = random.Random(seed)
    durations = {}
    ref, est = {}, {}
    for n in range(6):
        name = f"clip{n}.wav"
        dur = round(rng.uniform(40, 90), 2)
        durations[name] = dur
        ref[name], est[name] = [], []
        t = rng.uniform(0, 1.0)
        while True:
            length = rng.choice([0.3, 0.6, 1.0, 2.0, 4.0]) * rng.uniform(0.8, 1.2)
            if t + length > dur:
                break
            ev = (round(t, 3), round(t + length, 3), rng.choice(CLASSES))
            ref[name].append(ev)
            if rng.random() < 0.15:  # same-class overlap now and then
                ref[name].append((round(t + length / 3, 3), round(t + length * 1.2, 3) if t + length * 1.2 < dur else round(t + length, 3), ev[2]))
            t += length + rng.uniform(-0.3, 2.0)
            t = max(t, 0)
        for on, off, lab in ref[name]:
            r = rng.random()
            if r < 0.12:
                continue  # deletion
            if r < 0.24:
                lab = rng.choice([c for c in CLASSES if c != lab])  # substitution
            on2 = max(0.0, on + rng.gauss(0, 0.15))
            off2 = max(on2 + 0.05, off + rng.gauss(0, 0.3))
            est[name].append((round(on2, 3), round(off2, 3), lab))
        for _ in range(rng.randint(0, 3)):  # insertions
            on = rng.uniform(0, dur - 1)
            est[name].append((round(on, 3), round(on + rng.uniform(0.2, 1.5), 3), rng.choice(CLASSES)))
    return ref, est, durations


# ---------------------------------------------------------------- sed_eval metrics

def max_matching(graph):
    """Hopcroft-Karp; graph: est -> [ref]; returns ref -> est."""
    match = {}
    for u in graph:
        for v in graph[u]:
            if v not in match:
                match[v] = u
                break
    while True:
        layer_pred_ref = {}
        free_refs = []
        flag = object()
        est_pred = {u: flag for u in graph}
        for v in match:
            del est_pred[match[v]]
        frontier = list(est_pred)
        while frontier and not free_refs:
            grown = {}
            for u in frontier:
                for v in graph[u]:
                    if v not in layer_pred_ref:
                        grown.setdefault(v, []).append(u)
            frontier = []
            for v, us in grown.items():
                layer_pred_ref[v] = us
                if v in match:
                    frontier.append(match[v])
                    est_pred[match[v]] = v
                else:
                    free_refs.append(v)
        if not free_refs:
            return match

        def walk(v):
            if v not in layer_pred_ref:
                return False
            us = layer_pred_ref.pop(v)
            for u in us:
                if u in est_pred:
                    back = est_pred.pop(u)
                    if back is flag or walk(back):
                        match[v] = u
                        return True
            return False

        for v in free_refs:
            walk(v)


def prf_er(tp, nsys, nref, s, d, i):
    p = float("nan") if nsys == 0 else tp / nsys
    r = float("nan") if nref == 0 else tp / nref
    f = 0.0 if (p == 0 and r == 0) else 2 * p * r / (p + r)
    er = s / (nref + EPS) + d / (nref + EPS) + i / (nref + EPS)
    return p, r, f, er


def finish(classes_counts, overall):
    out = {"classes": {}, "micro": {}, "macro": {}}
    fs, ps, rs, ers = [], [], [], []
    for c, k in classes_counts.items():
        p, r, f, er = prf_er(k["tp"], k["nsys"], k["nref"], 0, k["fn"], k["fp"])
        out["classes"][c] = {"tp": k["tp"], "fp": k["fp"], "fn": k["fn"], "n_ref": k["nref"], "n_sys": k["nsys"],
                             "precision": p, "recall": r, "f1": f, "error_rate": er}
        fs.append(f), ps.append(p), rs.append(r), ers.append(er)
    o = overall
    p, r, f, er = prf_er(o["tp"], o["nsys"], o["nref"], o["s"], o["d"], o["i"])
    out["micro"] = {"tp": o["tp"], "n_ref": o["nref"], "n_sys": o["nsys"], "substitutions": o["s"],
                    "deletions": o["d"], "insertions": o["i"], "precision": p, "recall": r, "f1": f, "error_rate": er}
    nm = lambda v: float(np.nanmean(v)) if not all(math.isnan(x) for x in v) else float("nan")
    out["macro"] = {"precision": nm(ps), "recall": nm(rs), "f1": nm(fs), "error_rate": nm(ers)}
    return out


def event_based(ref, est, collar=0.2, pct=0.2, onset=True, offset=True, greedy=False):
    def tmatch(a, b):
        ok = True
        if onset:
            ok = ok and abs(a[0] - b[0]) <= collar
        if offset:
            ok = ok and abs(a[1] - b[1]) <= max(collar, pct * (a[1] - a[0]))
        return ok

    cc = {c: {"tp": 0, "fp": 0, "fn": 0, "nref": 0, "nsys": 0} for c in CLASSES}
    ov = {"tp": 0, "nsys": 0, "nref": 0, "s": 0, "d": 0, "i": 0}
    for name in ref:
        R, E = ref[name], est[name]
        rok, sok = [False] * len(R), [False] * len(E)
        if greedy:
            for j in range(len(R)):
                for i in range(len(E)):
                    if not sok[i] and R[j][2] == E[i][2] and tmatch(R[j], E[i]):
                        rok[j] = sok[i] = True
                        break
        else:
            graph = {}
            for j in range(len(R)):
                for i in range(len(E)):
                    if R[j][2] == E[i][2] and tmatch(R[j], E[i]):
                        graph.setdefault(i, []).append(j)
            for j, i in max_matching(graph).items():
                rok[j] = sok[i] = True
        subs = 0
        counted = [False] * len(E)
        for j in range(len(R)):
            if rok[j]:
                continue
            for i in range(len(E)):
                if not sok[i] and not counted[i] and tmatch(R[j], E[i]):
                    counted[i] = True
                    subs += 1
                    break
        tp = sum(rok)
        ov["tp"] += tp
        ov["nref"] += len(R)
        ov["nsys"] += len(E)
        ov["s"] += subs
        ov["d"] += len(R) - tp - subs
        ov["i"] += len(E) - tp - subs
        for j, e in enumerate(R):
            cc[e[2]]["nref"] += 1
            cc[e[2]]["tp"] += rok[j]
        for e in E:
            cc[e[2]]["nsys"] += 1
    for k in cc.values():
        k["fp"] = k["nsys"] - k["tp"]
        k["fn"] = k["nref"] - k["tp"]
    return finish(cc, ov)


def segment_based(ref, est, durations, res=1.0):
    cc = {c: {"tp": 0, "fp": 0, "fn": 0, "nref": 0, "nsys": 0} for c in CLASSES}
    ov = {"tp": 0, "nsys": 0, "nref": 0, "s": 0, "d": 0, "i": 0}
    for name in ref:
        n = int(math.ceil(durations[name] / res))

        def roll(events):
            a = np.zeros((n, len(CLASSES)), dtype=int)
            for on, off, lab in events:
                a[int(math.floor(on / res)):min(n, int(math.ceil(off / res))), CLASSES.index(lab)] = 1
            return a

        A, S = roll(ref[name]), roll(est[name])
        for s in range(n):
            tp = int(np.sum(A[s] & S[s]))
            nr, ns = int(A[s].sum()), int(S[s].sum())
            ov["tp"] += tp
            ov["nref"] += nr
            ov["nsys"] += ns
            ov["s"] += min(nr, ns) - tp
            ov["d"] += max(0, nr - ns)
            ov["i"] += max(0, ns - nr)
        for k, c in enumerate(CLASSES):
            cc[c]["tp"] += int(np.sum(A[:, k] & S[:, k]))
            cc[c]["fp"] += int(np.sum(S[:, k] & (1 - A[:, k])))
            cc[c]["fn"] += int(np.sum(A[:, k] & (1 - S[:, k])))
            cc[c]["nref"] += int(A[:, k].sum())
            cc[c]["nsys"] += int(S[:, k].sum())
    return finish(cc, ov)


# ---------------------------------------------------------------- PSDS

HOP = 0.25


def make_scores(ref, durations, seed=11):
    rng = np.random.default_rng(seed)
    scores = {}
    for name, dur in durations.items():
        frames = int(math.ceil(dur / HOP))
        v = rng.uniform(0, 0.35, size=(frames, len(CLASSES)))
        for on, off, lab in ref[name]:
            k = CLASSES.index(lab)
            f0, f1 = int(math.floor(on / HOP)), int(math.ceil(off / HOP))
            v[f0:f1, k] += rng.uniform(0.25, 0.6)
        scores[name] = np.round(np.clip(v, 0, 1), 2)
    return scores


def merged_gt(events):
    out = []
    for on, off in sorted(events):
        if off <= on:
            continue
        if out and on <= out[-1][1]:
            out[-1][1] = max(out[-1][1], off)
        else:
            out.append([on, off])
    return out


def r6(x):
    return round(x, 6)


def inter(a, b):
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def detections(col, t, dur):
    on = col >= t
    out, start = [], None
    for f in range(len(col) + 1):
        x = f < len(col) and on[f]
        if x and start is None:
            start = f
        if not x and start is not None:
            a, b = start * HOP, min(f * HOP, dur)
            if b > a:
                out.append((a, b))
            start = None
    return out


def psds(scores, ref, durations, dtc, gtc, cttc, alpha_ct, alpha_st, max_efpr=100.0, exact=False, n=50):
    classes = sorted({e[2] for evs in ref.values() for e in evs})
    K = len(classes)
    gts = {name: {c: merged_gt([(e[0], e[1]) for e in ref[name] if e[2] == c]) for c in classes} for name in ref}
    nref = {c: sum(len(gts[f][c]) for f in ref) for c in classes}
    tref = {c: sum(g[1] - g[0] for f in ref for g in gts[f][c]) for c in classes}
    total = sum(durations.values())
    curves = []
    per_class = {}
    for ci, c in enumerate(classes):
        k = CLASSES.index(c)
        if exact:
            ths = sorted({float(x) for f in ref for x in scores[f][:, k]}, reverse=True)
        else:
            ths = [(2 * i + 1) / (2 * n) for i in reversed(range(n))]
        pts = [(0.0, 0.0)]
        for t in ths:
            tp = fp = 0
            ct = {o: 0 for o in classes if o != c}
            for f in ref:
                dets = detections(scores[f][:, k], t, durations[f])
                cover = [0.0] * len(gts[f][c])
                for d in dets:
                    L = d[1] - d[0]
                    x = sum(inter(d, g) for g in gts[f][c])
                    if x > 0 and r6(x) >= r6(dtc * L):
                        for j, g in enumerate(gts[f][c]):
                            cover[j] += inter(d, g)
                        continue
                    fp += 1
                    if alpha_ct > 0:
                        for o in ct:
                            y = sum(inter(d, g) for g in gts[f][o])
                            if y > 0 and r6(y) >= r6(cttc * L):
                                ct[o] += 1
                tp += sum(1 for j, g in enumerate(gts[f][c]) if cover[j] > 0 and r6(cover[j]) >= r6(gtc * (g[1] - g[0])))
            tpr = tp / nref[c]
            efpr = fp * 3600 / total
            if alpha_ct > 0 and K > 1:
                efpr += alpha_ct * sum(ct[o] * 3600 / tref[o] for o in ct) / (K - 1)
            pts.append((efpr, tpr))
        xs = sorted({p[0] for p in pts})
        ys = [max(p[1] for p in pts if p[0] == x) for x in xs]
        ys = list(np.maximum.accumulate(ys))
        curves.append((xs, ys))
        per_class[c] = auc(xs, ys, max_efpr) / max_efpr
    X = sorted({x for xs, _ in curves for x in xs})
    Y = []
    for x in X:
        vals = []
        for xs, ys in curves:
            i = max(j for j in range(len(xs)) if xs[j] <= x)
            vals.append(ys[i])
        Y.append(max(0.0, float(np.mean(vals) - alpha_st * np.std(vals))))
    return auc(X, Y, max_efpr) / max_efpr, per_class


def auc(xs, ys, max_x):
    a = 0.0
    for i, x in enumerate(xs):
        if x >= max_x:
            break
        nxt = min(xs[i + 1], max_x) if i + 1 < len(xs) else max_x
        a += ys[i] * (nxt - x)
    return a


def main(out_dir):
    os.makedirs(os.path.join(out_dir, "scores"), exist_ok=True)
    ref, est, durations = make_case()
    with open(os.path.join(out_dir, "ref.tsv"), "w") as f:
        f.write("filename\tonset\toffset\tevent_label\n")
        for name, evs in ref.items():
            if not evs:
                f.write(f"{name}\n")
            for on, off, lab in evs:
                f.write(f"{name}\t{on}\t{off}\t{lab}\n")
    with open(os.path.join(out_dir, "est.tsv"), "w") as f:
        f.write("filename\tonset\toffset\tevent_label\n")
        for name, evs in est.items():
            for on, off, lab in evs:
                f.write(f"{name}\t{on}\t{off}\t{lab}\n")
    with open(os.path.join(out_dir, "durations.tsv"), "w") as f:
        f.write("filename\tduration\n")
        for name, d in durations.items():
            f.write(f"{name}\t{d}\n")
    scores = make_scores(ref, durations)
    for name, v in scores.items():
        with open(os.path.join(out_dir, "scores", name[:-4] + ".scores.tsv"), "w") as f:
            f.write("onset\toffset\t" + "\t".join(CLASSES) + "\n")
            for i, row in enumerate(v):
                f.write(f"{i * HOP}\t{(i + 1) * HOP}\t" + "\t".join(f"{x:g}" for x in row) + "\n")
    golden = {
        "event_based": event_based(ref, est),
        "event_based_greedy": event_based(ref, est, greedy=True),
        "event_based_onset_only": event_based(ref, est, offset=False),
        "segment_based": segment_based(ref, est, durations),
        "segment_based_0.5": segment_based(ref, est, durations, res=0.5),
    }
    for key, exact in (("grid", False), ("exact", True)):
        v1, c1 = psds(scores, ref, durations, 0.7, 0.7, 0.3, 0.0, 1.0, exact=exact)
        v2, c2 = psds(scores, ref, durations, 0.1, 0.1, 0.3, 0.5, 1.0, exact=exact)
        golden[f"psds1_{key}"] = {"value": v1, "classes": c1}
        golden[f"psds2_{key}"] = {"value": v2, "classes": c2}
    def no_nan(x):  # JSON has no NaN: write null, as earmark's JSON reports do
        if isinstance(x, dict):
            return {k: no_nan(v) for k, v in x.items()}
        if isinstance(x, float) and math.isnan(x):
            return None
        return x

    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(no_nan(golden), f, indent=1, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "eval"))
