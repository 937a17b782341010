// name: cooccurrence
// title: Code co-occurrence with counts and coefficients
// description: Pairs of codes that co-occur in a unit, with n_a, n_b, n_ab (the count), the c-coefficient (= Jaccard), P(b|a), P(a|b), lift, Fisher's exact p for small counts (n_ab <= fisher_max_count, else empty) and a flag when one code is more than imbalance_ratio times as frequent as the other. Units — segment (the default; as ATLAS.ti, MAXQDA and NVivo count): a passage, i.e. within one source the selections of the chosen codings that overlap, taken together; two codes co-occur in it when a selection carrying one and a selection carrying the other are the same or overlap (text and media ranges share a part — touching ranges, end = start, do not; picture and PDF regions intersect); a coding of a whole source is its own passage. exact: one selection (codings at the same position of one source are one selection, as NVivo writes them). source: one interview, drawing or other source. participant: all of one participant's material. n_a, n_b = units carrying a, b (among the units that can carry both); n_ab = units where they co-occur; N (n_units) = units that can carry both codes: those in sources of a kind on which both codes' codebooks are applied (participant unit: participants with such material), so no codebook, group or code filter changes a pair's metrics. proximity (segment unit): text or media ranges closer than this many characters (milliseconds) also co-occur, like MAXQDA's 'near'. Definitions: mmkg/analysis.py and mmkg/overlap.py. Analysis codings by default (the study's consensus coder), or the named coder(s). The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// analysis: cooccurrence
// param: study_id STRING = "" | study to analyse ('' = the only study in the store, * = every study; pairs never cross studies)
// param: coder STRING = "" | only these coders' codings, comma-separated ('' = the analysis codings)
// option: unit STRING = "segment" | unit: {units}
// option: proximity INTEGER = 0 | segment unit: ranges closer than this many characters also co-occur (0 = overlap only)
// option: codebook STRING = "" | only codes of this codebook, e.g. interview ('' = all)
// option: group STRING = "" | only codes of this code group (id or label, e.g. C or security threats; '' = all)
// option: code_a STRING = "" | only pairs with this code as a: A.3, interview:A.3 or a label such as model stealing
// option: code_b STRING = "" | only pairs with this code as b (same forms as code_a)
// option: min_count INTEGER = 1 | smallest n_ab listed (0 lists pairs that never co-occur too)
// option: fisher_max_count INTEGER = 20 | compute Fisher's exact p when n_ab is at most this
// option: imbalance_ratio FLOAT = 5.0 | flag pairs where one code is more than this many times as frequent
// mode: read
MATCH (g:Segment)-[c:CODED_AS]->(k:Code)
// projected first: faster, and LadybugDB 0.22 miscounts a relationship property filtered beside an OR
WITH g, k, c.analysis AS analysis, c.coder AS coder
WHERE ($study_id = '*' OR g.study_id = $study_id)
  AND (($coder = '' AND analysis) OR (',' + $coder + ',') CONTAINS (',' + coder + ','))
RETURN g.uid AS segment, k.uid AS code_uid;
