import preset from '../../jest.preset.js';

// Two workers: the two refresh tests spend ~30 s each waiting for a token's half-life, not computing.
export default { ...preset, displayName: 'auth', maxWorkers: 2 };
