import { appConfig } from '../vite.shared.ts';

export default appConfig('/app/', 5173);
