import { centroid, normalise } from './vectors.js';

describe(centroid.name, () => {
  it('averages directions, whatever their lengths', () => {
    expect([...centroid([new Float32Array([3, 0]), new Float32Array([0, 0.5])])].map((v) => v.toFixed(3))).toEqual(['0.707', '0.707']);
  });
});

describe(normalise.name, () => {
  it('scales to length 1 and leaves a zero vector alone', () => {
    expect([...normalise(new Float32Array([3, 4]))]).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.8, 6)]);
    expect([...normalise(new Float32Array([0, 0]))]).toEqual([0, 0]);
  });
});
