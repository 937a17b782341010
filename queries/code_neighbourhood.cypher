// name: code_neighbourhood
// title: What co-occurs with one code
// description: The codes that co-occur with one code (e.g. what co-occurs with model stealing), ranked by a chosen metric (rank_by: count = n_ab, c_coefficient = Jaccard, p_b_given_a, p_a_given_b, lift, fisher_p ascending, or any metric registered in mmkg.metrics). Same units, rule and metrics as `cooccurrence` (segment = passages of overlapping selections, the default; exact; source; participant), with the chosen code always as a; a pair's metrics do not depend on the codebook filter. The founding study's codings are a reconstruction matching the paper's figures, not the authors' data.
// analysis: neighbourhood
// param: study_id STRING = "" | study to analyse ('' = the only study in the store, * = every study)
// param: coder STRING = "" | only these coders' codings, comma-separated ('' = the analysis codings)
// option: unit STRING = "segment" | unit: {units}
// option: proximity INTEGER = 0 | segment unit: ranges closer than this many characters also co-occur (0 = overlap only)
// option: code STRING = "" | the code: A.3, interview:A.3 or a label ('' = the study's most frequent code)
// option: rank_by STRING = "count" | the metric that ranks the neighbours (fisher_p ascending): {metrics}
// option: codebook STRING = "" | only neighbours from this codebook ('' = all)
// option: min_count INTEGER = 1 | smallest n_ab listed
// option: limit INTEGER = 20 | at most this many neighbours (0 = all)
// statement: cooccurrence
// mode: read
