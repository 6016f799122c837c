"""The library's module graph: which top-level module of src/ names which (through `crate::`
paths; comments and unit tests left out), and within each folder which file names which. Prints
the graph and exits 1 when a loop is found; arrows to `error` are left out of the loop check (every
module returns its errors). Run from the repository root: `python3 tools/module_graph.py`.
"""
import os,re,sys,collections
root=sys.argv[1] if len(sys.argv)>1 else 'src'
files=[]
for d,_,fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'): files.append(os.path.join(d,f))
def modpath(p):
    rel=os.path.relpath(p,root)[:-3].split('/')
    if rel[-1] in('mod','lib'): rel=rel[:-1]
    return rel
top=collections.defaultdict(set); fine=collections.defaultdict(set)
for p in files:
    mp=modpath(p)
    src=open(p).read()
    # strip comments
    src=re.sub(r'//[^\n]*','',src)
    # strip #[cfg(test)] mod tests {...} roughly: cut from '#[cfg(test)]\nmod tests' to end
    i=src.find('#[cfg(test)]\nmod tests')
    if i>=0: src=src[:i]
    me=mp[0] if mp else 'lib'
    for m in re.finditer(r'crate::([a-z_]+)(?:::([a-z_]+))?',src):
        a=m.group(1)
        if a!=me: top[me].add(a)
        if mp and a==mp[0] and m.group(2) and len(mp)>1:
            b=m.group(2)
            if b!=mp[1]: fine['/'.join(mp[:2])].add(a+'/'+b)
    for m in re.finditer(r'\bsuper::([a-z_]+)',src):
        if len(mp)>=2:
            b=m.group(1); tgt='/'.join(mp[:-1]+[b])
            if tgt!='/'.join(mp): fine['/'.join(mp[:2])].add(tgt)
    # names of the crate root itself (an item re-exported there), which hide a module's arrow
    for m in re.finditer(r'crate::([A-Z]\w*|[a-z_]+!)',src):
        top[me].add('lib')
def cycles(g):
    out=[]
    for a in g:
        for b in g[a]:
            if a in g.get(b,()) and a<b: out.append((a,b))
    return out
print('top-level graph:')
for a in sorted(top): print(' ',a,'->',sorted(top[a]))
print('2-cycles top:',cycles(top))
# longer cycles via SCC
def scc(g):
    idx={};low={};st=[];on=set();res=[];c=[0]
    def v(n):
        idx[n]=low[n]=c[0];c[0]+=1;st.append(n);on.add(n)
        for w in g.get(n,()):
            if w not in idx: v(w);low[n]=min(low[n],low[w])
            elif w in on: low[n]=min(low[n],idx[w])
        if low[n]==idx[n]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==n:break
            if len(comp)>1:res.append(comp)
    nodes=set(g)|{x for s in g.values() for x in s}
    for n in nodes:
        if n not in idx: v(n)
    return res
g2={a:{b for b in s if b not in('error',)} for a,s in top.items()}
print('SCCs top (error excluded):',scc(g2))
print('2-cycles fine:',cycles(fine))
print('SCCs fine:',scc(fine))
loops=scc(g2)+scc(fine)
if loops or any('lib' in v for v in top.values()):
    print('import loops or names through the crate root: see above'); sys.exit(1)
