import { Controller, HttpCode, Post, Req, UploadedFile, UseInterceptors } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { imageAnalysisSchema, imageUrlRequestSchema, inlineImageContentType, maxInlineImageBytes, type AnalyzeImageRequest, type ImageAnalysis } from '@keyless/contracts';
import { MessagingClient } from '@keyless/messaging';
import { RequireRoles } from '../callers/caller-auth.guard.js';
import { ApiRequestBodies, guardedRoute, ProblemResponses, requestReply } from '../http/openapi.js';
import { ProblemException } from '../http/problem-details.js';
import { ImageUploadInterceptor, uploadLimits } from './image-upload.interceptor.js';


@ApiTags('images')
@Controller('v1')
export class ImagesController {
  constructor(private readonly messaging: MessagingClient) {}

  // Google-style custom method (`:analyze`); the colon is escaped for the route parser.
  @Post('images\\:analyze')
  @HttpCode(200)
  @RequireRoles('Images.Analyze')
  @ProblemResponses(...guardedRoute, ...requestReply)
  @UseInterceptors(ImageUploadInterceptor('image', maxInlineImageBytes))
  @ApiOperation({
    summary: 'Analyse an image',
    description:
      `Caption, tags and size of an image given by URL (JSON \`{"url": …}\`), uploaded as the raw body (\`image/*\`), or as the \`image\` field of a form. ` +
      `Uploads are limited to ${maxInlineImageBytes} bytes; a form to that file and at most ${uploadLimits.fields} fields of ${uploadLimits.fieldSize} bytes (413 or 400 beyond).`,
  })
  @ApiRequestBodies({
    'application/json': { schema: { type: 'object', required: ['url'], additionalProperties: false, properties: { url: { type: 'string', format: 'uri', description: 'A public http(s) URL of the image.' } } } },
    'multipart/form-data': { schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary', description: 'The image file.' } } } },
    'image/*': { schema: { type: 'string', format: 'binary' } },
    'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
  })
  @ApiResponse({ status: 200, description: 'What Azure AI Vision found: a caption (null when it has none), tags with confidences, and the size in pixels.', standardSchema: imageAnalysisSchema })
  analyze(@Req() request: Request, @UploadedFile() file?: Express.Multer.File): Promise<ImageAnalysis> {
    return this.messaging.request('vision.analyze-image', this.toRequest(request, file));
  }

  private toRequest(request: Request, file: Express.Multer.File | undefined): AnalyzeImageRequest {
    const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (file) return inline(file.buffer, file.mimetype);
    // A raw body of an image type is the image; JSON carries a URL, multipart a file field.
    if (inlineImageContentType.test(contentType) && Buffer.isBuffer(request.body)) return inline(request.body, contentType);
    if (contentType === 'multipart/form-data') {
      throw new ProblemException(400, 'validation', 'The request has 1 invalid field.', { errors: [{ field: 'body.image', message: 'Required: the image file, in the form field "image".' }] });
    }
    if (contentType === 'application/json') {
      // A URL only: the inline shape of the bus request is the gateway's to build from an upload, not a caller's to send.
      const parsed = imageUrlRequestSchema.safeParse(request.body);
      if (parsed.success) return parsed.data;
      throw new ProblemException(400, 'validation', 'The body must be {"url": "http(s)://…"}.', {
        errors: parsed.error.issues.map((issue) => ({ field: ['body', ...issue.path.map(String)].join('.'), message: issue.message })),
      });
    }
    throw new ProblemException(415, 'unsupported-media-type', `Send JSON {"url": …}, an image (image/*), or a form with an "image" file; not "${contentType || 'no content type'}".`);
  }
}

function inline(bytes: Buffer, contentType: string): AnalyzeImageRequest {
  if (bytes.length === 0) throw new ProblemException(400, 'validation', 'The uploaded image is empty.');
  if (!inlineImageContentType.test(contentType)) {
    throw new ProblemException(415, 'unsupported-media-type', `The uploaded file is "${contentType}", not an image.`);
  }
  return { imageBase64: bytes.toString('base64'), contentType };
}
