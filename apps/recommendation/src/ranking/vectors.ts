/** The normalised mean of `vectors`: the direction of what a shopper looked at (and searched for). */
export function centroid(vectors: readonly Float32Array[]): Float32Array {
  const sum = new Float32Array(vectors[0]!.length);
  for (const vector of vectors) {
    const unit = normalise(vector);
    for (let i = 0; i < sum.length; i++) sum[i]! += unit[i]!;
  }
  return normalise(sum);
}

/** `vector` scaled to length 1 (a zero vector is returned as is). */
export function normalise(vector: Float32Array): Float32Array {
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm);
  if (norm === 0) return vector;
  const out = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++) out[i] = vector[i]! / norm;
  return out;
}
