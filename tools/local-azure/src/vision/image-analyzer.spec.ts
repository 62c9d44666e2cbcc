import { Canvas, colours } from '../../test/vision/test-images.js';
import { analyzeImage, classifyShape, colourName } from './image-analyzer.js';
import { decodeImage, ImageDecodeError, readHeader } from './image-decoder.js';

async function read(bytes: Uint8Array) {
  const header = readHeader(bytes);
  return { header, reading: analyzeImage(await decodeImage(bytes, header)) };
}

describe('analyzeImage', () => {
  describe('when the image is a generated product picture in any supported format', () => {
    const picture = (): Canvas => new Canvas(160, 120).circle(80, 60, 40, colours.red);
    const formats = [
      ['png', (c: Canvas) => c.png()],
      ['jpeg', (c: Canvas) => c.jpeg()],
      ['gif', (c: Canvas) => c.gif()],
      ['bmp', (c: Canvas) => c.bmp()],
      ['webp', (c: Canvas) => c.webp()],
    ] as const;

    it.each(formats)('decodes %s and captions the red circle on white', async (format, encode) => {
      const { header, reading } = await read(await encode(picture()));
      expect(header).toEqual({ format, width: 160, height: 120 });
      expect(reading.caption.text).toBe('a red circle on a white background');
      expect(reading.tags.map((t) => t.name)).toEqual(expect.arrayContaining(['circle', 'red', 'white', 'graphics', 'shape']));
      expect(reading.objects).toHaveLength(1);
      const box = reading.objects[0]!.boundingBox;
      if (format === 'jpeg') {
        // Lossy: compression ringing around the edge may add a pixel or three.
        for (const [actual, exact] of [[box.x, 40], [box.y, 20], [box.w, 81], [box.h, 81]] as const) expect(Math.abs(actual - exact)).toBeLessThanOrEqual(3);
      } else {
        expect(box).toEqual({ x: 40, y: 20, w: 81, h: 81 });
      }
    });
  });

  it('names shapes and their orientation', () => {
    const canvas = new Canvas(300, 200).rect(20, 20, 40, 150, colours.blue).triangle(120, 40, 90, 90, colours.green).rect(230, 60, 50, 50, colours.yellow);
    const reading = analyzeImage(canvas);
    expect(reading.caption.text).toBe('a tall blue rectangle, a green triangle and a yellow square on a white background');
    expect(reading.objects.map((o) => o.shape)).toEqual(['rectangle', 'triangle', 'square']);
  });

  it('separates a white product from an off-white background, as in the demo catalog', () => {
    const canvas = new Canvas(128, 128, [245, 245, 241, 255]).rect(28, 15, 72, 98, [235, 235, 235, 255]);
    expect(analyzeImage(canvas).caption.text).toBe('a tall white rectangle on a white background');
  });

  it('calls a silhouette that is no simple geometric shape a shape', () => {
    // A T-shirt: sleeves across the top, a narrower body below.
    const canvas = new Canvas(128, 128).rect(15, 25, 98, 26, colours.blue).rect(38, 25, 52, 84, colours.blue);
    expect(analyzeImage(canvas).caption.text).toBe('a blue shape on a white background');
  });

  it('counts repeated shapes', () => {
    const canvas = new Canvas(200, 100, colours.black).circle(50, 50, 30, colours.yellow).circle(150, 50, 30, colours.yellow);
    expect(analyzeImage(canvas).caption.text).toBe('two yellow circles on a black background');
    expect(analyzeImage(canvas).tags.map((t) => t.name)).toContain('dark');
  });

  it('sees shapes on a transparent background', () => {
    const reading = analyzeImage(new Canvas(100, 100, colours.transparent).circle(50, 50, 30, colours.green));
    expect(reading.caption.text).toBe('a green circle on a transparent background');
    expect(reading.tags.map((t) => t.name)).toContain('transparent');
  });

  it('calls a single-colour image plain and bright when it is white', () => {
    const reading = analyzeImage(new Canvas(80, 80));
    expect(reading.caption.text).toBe('a plain white image');
    expect(reading.tags.map((t) => t.name)).toEqual(expect.arrayContaining(['white', 'bright', 'monochrome']));
  });

  it('reports no objects for a photograph-like image and describes its tones', () => {
    const reading = analyzeImage(new Canvas(300, 100).noise(7));
    expect(reading.objects).toEqual([]);
    expect(reading.graphic).toBe(false);
    expect(reading.caption.text).toMatch(/^a wide image in mostly .+ tones$/);
    expect(reading.caption.confidence).toBeLessThan(0.6);
  });

  it('keeps every confidence strictly between 0 and 1', () => {
    const reading = analyzeImage(new Canvas(120, 120).rect(10, 10, 100, 100, colours.red));
    for (const { confidence } of [...reading.tags, reading.caption, ...reading.objects]) {
      expect(confidence).toBeGreaterThan(0);
      expect(confidence).toBeLessThan(1);
    }
  });
});

describe('colourName', () => {
  it.each([
    [[220, 30, 40], 'red'],
    [[30, 70, 200], 'blue'],
    [[40, 160, 60], 'green'],
    [[250, 210, 30], 'yellow'],
    [[250, 140, 20], 'orange'],
    [[120, 70, 30], 'brown'],
    [[128, 128, 128], 'gray'],
    [[250, 250, 250], 'white'],
    [[10, 10, 10], 'black'],
    [[140, 40, 160], 'purple'],
    [[250, 150, 200], 'pink'],
  ] as const)('names %j %s', (rgb, name) => {
    expect(colourName(rgb[0], rgb[1], rgb[2])).toBe(name);
  });
});

describe('classifyShape', () => {
  const profile = (rows: number, share: (t: number) => number): number[] => Array.from({ length: rows }, (_, r) => share((r + 0.5) / rows));

  it('tells rectangles, circles and triangles apart by their row profile and aspect', () => {
    expect(classifyShape(profile(40, () => 1), 1).shape).toBe('square');
    expect(classifyShape(profile(20, () => 1), 2).shape).toBe('rectangle');
    expect(classifyShape(profile(40, (t) => Math.sqrt(1 - (2 * t - 1) ** 2)), 1).shape).toBe('circle');
    expect(classifyShape(profile(25, (t) => Math.sqrt(1 - (2 * t - 1) ** 2)), 1.6).shape).toBe('ellipse');
    expect(classifyShape(profile(40, (t) => t), 1).shape).toBe('triangle');
    expect(classifyShape(profile(40, (t) => 1 - t), 1.2).shape).toBe('triangle');
  });

  it('calls a profile that fits none of them a shape', () => {
    // A T-shirt: wide sleeves on top, a narrow body below.
    expect(classifyShape(profile(40, (t) => (t < 0.3 ? 1 : 0.5)), 1).shape).toBe('shape');
  });
});

describe('readHeader', () => {
  it('refuses bytes that are no image', () => {
    expect(() => readHeader(new TextEncoder().encode('definitely not an image'))).toThrow(ImageDecodeError);
  });

  it('refuses a PNG whose data is corrupt after a valid header', async () => {
    const png = new Canvas(64, 64).png();
    const broken = png.slice(0, 60);
    const header = readHeader(broken);
    await expect(decodeImage(broken, header)).rejects.toThrow(ImageDecodeError);
  });
});
