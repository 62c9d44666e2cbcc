import preset from '../../jest.preset.js';

// The CLI tests run the whole doctor as a process: every probe, the first database sign-in included (the local
// PostgreSQL starts its engine with the first connection), which takes longer than Jest's 5-second default.
export default { ...preset, displayName: 'doctor', testTimeout: 30_000 };
