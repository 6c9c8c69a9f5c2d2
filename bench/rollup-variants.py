#!/usr/bin/python3
# Variants of the roll-up rule (src/detect/rollup.cpp, docs/labels.md) on an all-labels run, for
# measuring a change to the rule without rebuilding: the same rule in Python, with switches.
#
#   bench/rollup-variants.py ONTOLOGY.json ALL.csv OUT.tsv '{"ratio": 0.5, "minov": 0.5,
#       "sib": false, "cofire": true, "extend": true}'
#
# ALL.csv: events.csv of `earmark detect --all-labels --format csv,tsv`; OUT.tsv: DCASE TSV for
# `earmark eval`. With the default switches (cofire on) its output equals `earmark detect`'s up
# to ties between confidences that the CSV rounds to 3 decimals.
#   ratio   a label names the sound if its confidence >= ratio x each related label it replaces
#   minov   co-parents/siblings: overlap as a share of the shorter event
#   sib     siblings under any non-root, non-abstract parent are one sound when they overlap
#   cofire  ... only while an event of that parent overlaps both (Earmark's rule)
#   extend  the reported span takes in the absorbed events that belong to it only
import csv, json, sys, os
o=json.load(open(sys.argv[1]))
byid={n['id']:i for i,n in enumerate(o)}
name2i={n['name']:i for i,n in enumerate(o)}
par=[[] for _ in o]; ch=[[byid[c] for c in n['child_ids']] for n in o]
for i,c in enumerate(ch):
    for k in c: par[k].append(i)
import functools
@functools.lru_cache(None)
def depth(i): return 0 if not par[i] else 1+max(depth(p) for p in par[i])
@functools.lru_cache(None)
def anc(i):
    s=set()
    for p in par[i]: s|={p}|anc(p)
    return frozenset(s)
def rel(a,b,sib):
    if a==b: return None
    if b in anc(a): return 'anc'
    if a in anc(b): return 'desc'
    if set(ch[a])&set(ch[b]): return 'cousin'
    if sib:
        for p in set(par[a])&set(par[b]):
            if depth(p)>=1 and 'abstract' not in o[p]['restrictions']: return 'cousin'
    return None
def rollup(evs, ratio=0.5, minov=0.5, sib=False, extend=True, cofire=True, anyparent=False):
    n=len(evs); R=[[None]*n for _ in range(n)]
    for i in range(n):
        for j in range(i+1,n):
            a,b=evs[i],evs[j]
            inter=min(a[1],b[1])-max(a[0],b[0])
            if inter<=1e-6: continue
            r=rel(a[4],b[4],sib)
            if not r and cofire:
                for p in set(par[a[4]])&set(par[b[4]]):
                    if not anyparent and (depth(p)<1 or 'abstract' in o[p]['restrictions']): continue
                    if any(e[4]==p and min(e[1],a[1])-max(e[0],a[0])>1e-6 and min(e[1],b[1])-max(e[0],b[0])>1e-6 for e in evs):
                        r='cousin'
            if not r: continue
            if r=='cousin' and inter < minov*min(a[1]-a[0],b[1]-b[0])-1e-6: continue
            R[i][j]=r; R[j][i]={'anc':'desc','desc':'anc'}.get(r,r)
    elig=[all(not(R[i][j] and R[i][j]!='desc' and evs[i][3] < ratio*evs[j][3]) for j in range(n)) for i in range(n)]
    st=['free']*n; picks=[]
    while True:
        cand=[i for i in range(n) if st[i]=='free']
        if not cand: break
        b=max(cand,key=lambda i:(elig[i],depth(evs[i][4]),evs[i][3],-evs[i][0]))
        st[b]='rep'; picks.append(b)
        for j in range(n):
            if st[j]=='free' and R[b][j]: st[j]='abs'
    out=[]
    for i in picks:
        on,off=evs[i][0],evs[i][1]
        if extend:
            for j in range(n):
                if st[j]=='abs' and R[i][j] and sum(1 for p in picks if R[p][j])==1:
                    on=min(on,evs[j][0]); off=max(off,evs[j][1])
        out.append((on,off,evs[i][2]))
    return out
def run(src, dst, **kw):
    files={}
    for r in csv.DictReader(open(src)):
        files.setdefault(os.path.basename(r['file']),[]).append((float(r['onset']),float(r['offset']),r['label'],float(r['confidence']),name2i[r['label']]))
    with open(dst,'w') as f:
        f.write('filename\tonset\toffset\tevent_label\n')
        for fn,evs in sorted(files.items()):
            for on,off,l in sorted(rollup(evs,**kw)):
                f.write(f'{fn}\t{on:.3f}\t{off:.3f}\t{l}\n')
if __name__=='__main__':
    kw=json.loads(sys.argv[4]) if len(sys.argv)>4 else {}
    run(sys.argv[2], sys.argv[3], **kw)
