/**
 * What Flex Consumption refuses or ignores, checked over the ARM JSON the real Bicep compiler makes of
 * infra/main.bicep (test/infra/compiled.ts): no refused site property, no refused siteConfig property, no app
 * setting the plan takes from elsewhere, and a runtime version Microsoft supports.
 *
 * Sources (docs/deploy.md lists them too):
 * - [deprecations] Microsoft Learn, "App settings reference for Azure Functions", Flex Consumption plan deprecations:
 *   https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
 *   (MicrosoftDocs/azure-docs articles/azure-functions/functions-app-settings.md, ms.date 2025-07-11).
 * - [51021] ARM error 51021 "The following site configuration property (…) for Flex Consumption sites is invalid",
 *   quoted verbatim in microsoft/azure-pipelines-tasks#21032 (FtpsState, Use32BitWorkerProcess, NetFrameworkVersion,
 *   FunctionsRuntimeScaleMonitoringEnabled), Azure/terraform-azurerm-avm-res-web-site#360 (the same plus
 *   PreWarmedInstanceCount; a Microsoft moderator: blocking is intended everywhere, older regional stamps still
 *   ignore them), #283 (LinuxFxVersion) and #345 (alwaysOn), and Azure/azure-functions-host#10643
 *   (FunctionAppScaleLimit).
 */
import { describe, expect, it } from 'vitest';
import { allResources, ensureCompiled, loadTemplate, moduleParam, type JsonObject, type Template } from './compiled.js';

const build = ensureCompiled();

/** Site properties (`properties.*` or `properties.siteConfig.*`) Flex Consumption refuses or does not use, with why. */
export const REFUSED_SITE_PROPERTIES: Record<string, string> = {
  ftpsState: '[deprecations] FTPS not supported; [51021] azure-pipelines-tasks#21032, avm-res-web-site#360',
  use32BitWorkerProcess: '[deprecations] 32-bit not supported; [51021] azure-pipelines-tasks#21032',
  netFrameworkVersion:
    '[deprecations] replaced by functionAppConfig.runtime.version; [51021] azure-pipelines-tasks#21032',
  functionsRuntimeScaleMonitoringEnabled: '[51021] azure-pipelines-tasks#21032, avm-res-web-site#360',
  preWarmedInstanceCount: '[deprecations] renamed alwaysReadyInstances; [51021] avm-res-web-site#360',
  linuxFxVersion: '[deprecations] replaced by functionAppConfig.runtime; [51021] avm-res-web-site#283',
  functionAppScaleLimit: '[deprecations] renamed maximumInstanceCount; [51021] azure-functions-host#10643',
  alwaysOn: '[deprecations] not valid; avm-res-web-site#345',
  windowsFxVersion: '[deprecations] not valid',
  javaVersion: '[deprecations] replaced by functionAppConfig.runtime.version',
  powerShellVersion: '[deprecations] replaced by functionAppConfig.runtime.version',
  containerSize: '[deprecations] renamed instanceMemoryMB',
  isReserved: '[deprecations] not valid',
  isXenon: '[deprecations] not valid',
  vnetBackupRestoreEnabled: '[deprecations] not used for networking in Flex Consumption',
  vnetContentShareEnabled: '[deprecations] not used for networking in Flex Consumption',
  vnetImagePullEnabled: '[deprecations] not used for networking in Flex Consumption',
  vnetRouteAllEnabled: '[deprecations] not used for networking in Flex Consumption',
};

/** App settings Flex Consumption takes from functionAppConfig, the deployment's `remoteBuild`, or not at all. */
export const REFUSED_APP_SETTINGS: Record<string, string> = {
  ENABLE_ORYX_BUILD: '[deprecations] replaced by remoteBuild',
  FUNCTIONS_EXTENSION_VERSION: '[deprecations] set by the backend',
  FUNCTIONS_WORKER_RUNTIME: '[deprecations] replaced by functionAppConfig.runtime.name',
  FUNCTIONS_WORKER_RUNTIME_VERSION: '[deprecations] replaced by functionAppConfig.runtime.version',
  FUNCTIONS_MAX_HTTP_CONCURRENCY: '[deprecations] replaced by scaleAndConcurrency triggers',
  FUNCTIONS_WORKER_PROCESS_COUNT: '[deprecations] not valid',
  FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED: '[deprecations] not valid',
  SCM_DO_BUILD_DURING_DEPLOYMENT: '[deprecations] replaced by remoteBuild',
  WEBSITE_CONTENTAZUREFILECONNECTIONSTRING: '[deprecations] replaced by functionAppConfig.deployment',
  WEBSITE_CONTENTOVERVNET: '[deprecations] not used for networking in Flex Consumption',
  WEBSITE_CONTENTSHARE: '[deprecations] replaced by functionAppConfig.deployment',
  WEBSITE_DNS_SERVER: '[deprecations] DNS comes from the integrated virtual network',
  WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT: '[deprecations] replaced by maximumInstanceCount',
  WEBSITE_NODE_DEFAULT_VERSION: '[deprecations] replaced by functionAppConfig.runtime.version',
  WEBSITE_RUN_FROM_PACKAGE: '[deprecations] not used for deployments in Flex Consumption',
  WEBSITE_SKIP_CONTENTSHARE_VALIDATION: '[deprecations] no content share in Flex Consumption',
  WEBSITE_VNET_ROUTE_ALL: '[deprecations] not used for networking in Flex Consumption',
};

/**
 * Node.js majors Microsoft's "Supported languages in Azure Functions" page lists as supported for Functions on
 * Linux today (https://learn.microsoft.com/azure/azure-functions/supported-languages): Node.js 20's support ended
 * 2026-04-30. Node.js 24's status could not be confirmed from a Microsoft page, so the template does not offer it.
 */
const SUPPORTED_NODE_MAJORS = ['22'];

const lower = (names: Iterable<string>) => new Set([...names].map((n) => n.toLowerCase()));

/** Property names set on a site resource: `properties.*` and `properties.siteConfig.*`. */
export function sitePropertyNames(site: JsonObject): string[] {
  const props = (site.properties ?? {}) as JsonObject;
  const siteConfig = (props.siteConfig ?? {}) as JsonObject;
  return [...Object.keys(props), ...Object.keys(siteConfig)];
}

/**
 * Every app setting name the function app can get from this template: the literal names of the module's
 * `siteConfig.appSettings` expression, the keys main.bicep passes as `appSettings`, and the name formats of the
 * `credentialSettings` families; plus any `Microsoft.Web/sites/config` resource's properties.
 */
export function appSettingNames(template: Template): string[] {
  const names: string[] = [];
  for (const r of allResources(template)) {
    if (r.type === 'Microsoft.Web/sites') {
      const expression = String(((r.properties as JsonObject).siteConfig as JsonObject | undefined)?.appSettings ?? '');
      names.push(...[...expression.matchAll(/createObject\('name', '([^']+)'/g)].map((m) => m[1]!));
    }
    if (r.type === 'Microsoft.Web/sites/config') names.push(...Object.keys((r.properties ?? {}) as JsonObject));
  }
  names.push(...Object.keys((moduleParam(template, 'functionApp', 'appSettings') ?? {}) as JsonObject));
  const families = String(moduleParam(template, 'functionApp', 'credentialSettings'));
  names.push(
    ...[...families.matchAll(/format\('([A-Z_]+)__\{0\}__([A-Z_]+)'/g)].map((m) => `${m[1]}__<name>__${m[2]}`),
  );
  return names;
}

describe.runIf(build.status === 'ok')('infra: nothing Flex Consumption refuses (compiled template)', () => {
  const template = build.status === 'ok' ? loadTemplate() : ({} as Template);
  const resources = build.status === 'ok' ? allResources(template) : [];
  const sites = resources.filter((r) => r.type === 'Microsoft.Web/sites');

  it('the function app is a Flex Consumption site, configured through functionAppConfig', () => {
    expect(sites).toHaveLength(1);
    const plan = resources.find((r) => r.type === 'Microsoft.Web/serverfarms')!;
    expect(plan.sku).toEqual({ tier: 'FlexConsumption', name: 'FC1' });
    const config = (sites[0]!.properties as JsonObject).functionAppConfig as JsonObject;
    expect(Object.keys(config).sort()).toEqual(['deployment', 'runtime', 'scaleAndConcurrency']);
  });

  it('sets no site or siteConfig property Flex Consumption refuses', () => {
    const refused = lower(Object.keys(REFUSED_SITE_PROPERTIES));
    for (const site of sites) {
      const found = sitePropertyNames(site).filter((n) => refused.has(n.toLowerCase()));
      expect(found, found.map((n) => `${n}: ${REFUSED_SITE_PROPERTIES[n] ?? ''}`).join('; ')).toEqual([]);
    }
    // no separate site config resource carries them either
    for (const r of resources.filter((x) => x.type === 'Microsoft.Web/sites/config')) {
      expect(Object.keys((r.properties ?? {}) as JsonObject).filter((n) => refused.has(n.toLowerCase()))).toEqual([]);
    }
  });

  it('sets no app setting Flex Consumption takes from elsewhere', () => {
    const names = appSettingNames(template);
    expect(names.length).toBeGreaterThan(20);
    const refused = lower(Object.keys(REFUSED_APP_SETTINGS));
    const found = names.filter((n) => refused.has(n.toLowerCase()));
    expect(found, found.map((n) => `${n}: ${REFUSED_APP_SETTINGS[n.toUpperCase()] ?? ''}`).join('; ')).toEqual([]);
  });

  it('offers only the Node.js majors Microsoft supports for Functions, defaulting to the newest', () => {
    const param = template.parameters.nodeVersion!;
    expect(param.allowedValues).toEqual(SUPPORTED_NODE_MAJORS);
    expect(param.defaultValue).toBe(SUPPORTED_NODE_MAJORS.at(-1));
    const runtime = ((sites[0]!.properties as JsonObject).functionAppConfig as JsonObject).runtime as JsonObject;
    expect(runtime.name).toBe('node');
  });
});

describe('infra: the refused lists catch what they name', () => {
  it('a site with ftpsState or FUNCTIONS_WORKER_RUNTIME is caught, case-insensitively', () => {
    const refused = lower(Object.keys(REFUSED_SITE_PROPERTIES));
    const site = {
      properties: { httpsOnly: true, siteConfig: { FtpsState: 'Disabled', minTlsVersion: '1.2' } },
    } as unknown as JsonObject;
    expect(sitePropertyNames(site).filter((n) => refused.has(n.toLowerCase()))).toEqual(['FtpsState']);
    const settings = lower(Object.keys(REFUSED_APP_SETTINGS));
    expect(settings.has('functions_worker_runtime')).toBe(true);
  });
});
